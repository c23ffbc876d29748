import { describe, expect, test } from "bun:test";
import { SYSTEM_ACCOUNT } from "../../machines/journal";
import { availableOf, heldOf, walletMachine } from "../../machines/wallet.machine";
import { activeWallet, AT, type Command, expectMove, expectRejected, run, type Snapshot, step, unopened, WALLET } from "./drive";

/** The machine only carries a destination (sealed at the edge); its content is not its business. */
const bank = { masked: { type: "bank", account: "****3704" }, sealed: { kid: "e1", iv: "iv", ct: "ct", tag: "tag" } };
const withdraw = (withdrawalId: string, amount: bigint): Command => ({ type: "withdrawal.request", withdrawalId, amount, destination: bank });
const reserve = (transferId: string, amount: bigint, toWalletId = "w-2"): Command => ({ type: "transfer.reserve", transferId, journalId: `j-${transferId}`, toWalletId, amount });
const freeze: Command = { type: "wallet.freeze" };

/** One of every command a wallet can be sent, for "rejects everything" checks. */
const EVERY_COMMAND: Command[] = [
  { type: "wallet.credit", journalId: "j-x", amount: 1n },
  { type: "wallet.payment", journalId: "j-y", amount: 1n },
  { type: "wallet.freeze" },
  { type: "wallet.unfreeze" },
  withdraw("wd-x", 1n),
  { type: "withdrawal.process", withdrawalId: "wd-x" },
  { type: "withdrawal.complete", withdrawalId: "wd-x", journalId: "j-z" },
  { type: "withdrawal.fail", withdrawalId: "wd-x" },
  { type: "withdrawal.cancel", withdrawalId: "wd-x" },
  reserve("t-x", 1n),
  { type: "transfer.credit", transferId: "t-y", journalId: "j-t", fromWalletId: "w-9", asset: "USD", amount: 1n },
  { type: "transfer.settle", transferId: "t-x" },
  { type: "transfer.void", transferId: "t-x", journalId: "j-v", reason: "x" },
];

describe("opening", () => {
  test("a wallet opens active with the owner and asset it was given and nothing in it", () => {
    const { next, effects } = step(unopened(), { type: "wallet.open", walletId: WALLET, ownerId: "owner-1", asset: "KES" });
    expect(next.value).toBe("active");
    expect(next.context).toEqual({ walletId: WALLET, ownerId: "owner-1", asset: "KES", posted: 0n, withdrawals: {}, outgoing: {} });
    expect(effects).toEqual([{ type: "wallet.opened", walletId: WALLET, asset: "KES", ownerId: "owner-1", at: AT }]);
  });

  test("opening an existing wallet again is refused with WALLET_EXISTS", () => {
    expectRejected(activeWallet(500n), { type: "wallet.open", walletId: WALLET, ownerId: "someone-else", asset: "EUR" }, "WALLET_EXISTS");
  });

  test("every command to a wallet that was never opened is refused with WALLET_NOT_FOUND", () => {
    for (const command of EVERY_COMMAND) expectRejected(unopened(), command, "WALLET_NOT_FOUND");
  });
});

describe("credits and payments", () => {
  test("a credit moves money from funding into the wallet", () => {
    const { next, effects } = step(activeWallet(), { type: "wallet.credit", journalId: "j-1", amount: 1234n, reference: "inv-7" });
    expect(next.context.posted).toBe(1234n);
    expect(effects).toHaveLength(1);
    const credited = effects[0]!;
    if (credited.type !== "wallet.credited") throw new Error(`unexpected ${credited.type}`);
    expect(credited.journal).toMatchObject({ id: "j-1", kind: "credit", asset: "USD", reference: "inv-7" });
    expectMove(credited.journal, SYSTEM_ACCOUNT.funding, WALLET, 1234n);
  });

  test("a payment within the available balance moves money from the wallet to payments", () => {
    const { next, effects } = step(activeWallet(1000n), { type: "wallet.payment", journalId: "j-2", amount: 1000n });
    expect(next.context.posted).toBe(0n);
    const paid = effects[0]!;
    if (paid.type !== "wallet.paid") throw new Error(`unexpected ${paid.type}`);
    expectMove(paid.journal, WALLET, SYSTEM_ACCOUNT.payments, 1000n);
  });

  test("a payment one unit above the available balance is refused with INSUFFICIENT_FUNDS and changes nothing", () => {
    expectRejected(activeWallet(1000n), { type: "wallet.payment", journalId: "j-2", amount: 1001n }, "INSUFFICIENT_FUNDS");
    expectRejected(activeWallet(), { type: "wallet.payment", journalId: "j-2", amount: 1n }, "INSUFFICIENT_FUNDS");
  });

  test("money held by a withdrawal cannot be paid out even though it is still posted", () => {
    const held = run(activeWallet(1000n), withdraw("wd-1", 600n));
    expect(held.context.posted).toBe(1000n);
    expect(heldOf(held.context)).toBe(600n);
    expect(availableOf(held.context)).toBe(400n);
    expectRejected(held, { type: "wallet.payment", journalId: "j-3", amount: 401n }, "INSUFFICIENT_FUNDS");
    expectRejected(held, withdraw("wd-2", 401n), "INSUFFICIENT_FUNDS");
    expectRejected(held, reserve("t-1", 401n), "INSUFFICIENT_FUNDS");
    expect(availableOf(run(held, { type: "wallet.payment", journalId: "j-3", amount: 400n }).context)).toBe(0n);
  });

  test("held adds up over several open withdrawals, processing ones included", () => {
    const s = run(activeWallet(1000n), withdraw("wd-1", 100n), withdraw("wd-2", 250n), { type: "withdrawal.process", withdrawalId: "wd-2" });
    expect(heldOf(s.context)).toBe(350n);
    expect(availableOf(s.context)).toBe(650n);
  });
});

describe("status changes", () => {
  test("an unhandled command emits nothing so the host can answer INVALID_TRANSITION", () => {
    const active = activeWallet(100n);
    const unfreeze = step(active, { type: "wallet.unfreeze" });
    expect(unfreeze.effects).toEqual([]);
    expect(unfreeze.next.value).toBe("active");
    expect(unfreeze.next.context).toEqual(active.context);

    const frozen = run(active, freeze);
    const again = step(frozen, freeze);
    expect(again.effects).toEqual([]);
    expect(again.next.value).toBe("frozen");
  });

  test("freeze and unfreeze move between active and frozen and keep the money", () => {
    const frozen = step(activeWallet(100n), freeze);
    expect(frozen.next.value).toBe("frozen");
    expect(frozen.effects.map((e) => e.type)).toEqual(["wallet.frozen"]);
    const thawed = step(frozen.next, { type: "wallet.unfreeze" });
    expect(thawed.next.value).toBe("active");
    expect(thawed.next.context.posted).toBe(100n);
  });

  test("a frozen wallet refuses credits, payments, withdrawals and transfers in and out", () => {
    const frozen = run(activeWallet(1000n), freeze);
    expectRejected(frozen, { type: "wallet.credit", journalId: "j", amount: 1n }, "WALLET_FROZEN");
    expectRejected(frozen, { type: "wallet.payment", journalId: "j", amount: 1n }, "WALLET_FROZEN");
    expectRejected(frozen, withdraw("wd-1", 1n), "WALLET_FROZEN");
    expectRejected(frozen, reserve("t-1", 1n), "WALLET_FROZEN");
    expectRejected(frozen, { type: "transfer.credit", transferId: "t-9", journalId: "j", fromWalletId: "w-9", asset: "USD", amount: 1n }, "WALLET_FROZEN");
  });

  test("a frozen wallet still lets an open withdrawal complete", () => {
    const frozen = run(activeWallet(1000n), withdraw("wd-1", 300n), { type: "withdrawal.process", withdrawalId: "wd-1" }, freeze);
    const { next, effects } = step(frozen, { type: "withdrawal.complete", withdrawalId: "wd-1", journalId: "j-wd" });
    expect(next.value).toBe("frozen");
    expect(next.context.posted).toBe(700n);
    expect(next.context.withdrawals).toEqual({});
    const changed = effects[0]!;
    if (changed.type !== "withdrawal.changed") throw new Error(`unexpected ${changed.type}`);
    expect(changed.status).toBe("completed");
    expectMove(changed.journal, WALLET, SYSTEM_ACCOUNT.withdrawals, 300n);
  });

  test("a frozen wallet still lets an outgoing transfer settle or be voided", () => {
    const frozen = run(activeWallet(1000n), reserve("t-1", 200n), reserve("t-2", 300n), freeze);
    const settled = step(frozen, { type: "transfer.settle", transferId: "t-1" });
    expect(settled.effects.map((e) => e.type)).toEqual(["transfer.settled"]);
    expect(settled.next.context.outgoing).toEqual({ "t-2": { amount: 300n, toWalletId: "w-2" } });
    const voided = step(settled.next, { type: "transfer.void", transferId: "t-2", journalId: "j-void", reason: "receiver refused" });
    expect(voided.next.value).toBe("frozen");
    expect(voided.next.context.posted).toBe(800n);
    expect(voided.next.context.outgoing).toEqual({});
  });

  test("a wallet with money, an open withdrawal or a pending outgoing transfer cannot be closed", () => {
    expectRejected(activeWallet(1n), { type: "wallet.close" }, "WALLET_NOT_EMPTY");
    expectRejected(run(activeWallet(1n), freeze), { type: "wallet.close" }, "WALLET_NOT_EMPTY");
    expectRejected(run(activeWallet(500n), withdraw("wd-1", 500n)), { type: "wallet.close" }, "WALLET_NOT_EMPTY");
    const drained = run(activeWallet(500n), reserve("t-1", 500n));
    expect(drained.context.posted).toBe(0n);
    expectRejected(drained, { type: "wallet.close" }, "WALLET_NOT_EMPTY");
  });

  test("an empty wallet closes from active and from frozen", () => {
    for (const start of [activeWallet(), run(activeWallet(), freeze)]) {
      const { next, effects } = step(start, { type: "wallet.close" });
      expect(next.value).toBe("closed");
      expect(effects.map((e) => e.type)).toEqual(["wallet.closed"]);
    }
  });

  test("a closed wallet refuses every command and stays closed", () => {
    const closed = run(activeWallet(), { type: "wallet.close" });
    for (const command of EVERY_COMMAND) expectRejected(closed, command, "WALLET_CLOSED");
    expectRejected(closed, { type: "wallet.close" }, "INVALID_TRANSITION");
    expectRejected(closed, { type: "wallet.open", walletId: WALLET, ownerId: "o", asset: "USD" }, "WALLET_EXISTS");
  });
});

describe("transfers", () => {
  test("reserve moves the amount from the wallet into transit and remembers the transfer", () => {
    const { next, effects } = step(activeWallet(1000n), reserve("t-1", 400n, "w-2"));
    expect(next.context.posted).toBe(600n);
    expect(next.context.outgoing).toEqual({ "t-1": { amount: 400n, toWalletId: "w-2" } });
    const reserved = effects[0]!;
    if (reserved.type !== "transfer.reserved") throw new Error(`unexpected ${reserved.type}`);
    expect(reserved.journal.kind).toBe("transfer_reserve");
    expectMove(reserved.journal, WALLET, SYSTEM_ACCOUNT.transit, 400n);
  });

  test("credit moves the amount from transit into the receiving wallet", () => {
    const { next, effects } = step(activeWallet(10n), { type: "transfer.credit", transferId: "t-1", journalId: "j-c", fromWalletId: "w-0", asset: "USD", amount: 400n });
    expect(next.context.posted).toBe(410n);
    const credited = effects[0]!;
    if (credited.type !== "transfer.credited") throw new Error(`unexpected ${credited.type}`);
    expectMove(credited.journal, SYSTEM_ACCOUNT.transit, WALLET, 400n);
  });

  test("credit of another asset is refused with ASSET_MISMATCH", () => {
    expectRejected(activeWallet(10n), { type: "transfer.credit", transferId: "t-1", journalId: "j-c", fromWalletId: "w-0", asset: "EUR", amount: 400n }, "ASSET_MISMATCH");
  });

  test("settle forgets the transfer and moves no money", () => {
    const reserved = run(activeWallet(1000n), reserve("t-1", 400n));
    const { next, effects } = step(reserved, { type: "transfer.settle", transferId: "t-1" });
    expect(next.context.posted).toBe(600n);
    expect(next.context.outgoing).toEqual({});
    expect(effects).toEqual([{ type: "transfer.settled", walletId: WALLET, asset: "USD", at: AT, transferId: "t-1", toWalletId: "w-2", amount: 400n }]);
  });

  test("void moves the reserved amount from transit back into the wallet", () => {
    const reserved = run(activeWallet(1000n), reserve("t-1", 400n));
    const { next, effects } = step(reserved, { type: "transfer.void", transferId: "t-1", journalId: "j-v", reason: "receiver closed" });
    expect(next.context.posted).toBe(1000n);
    expect(next.context.outgoing).toEqual({});
    const voided = effects[0]!;
    if (voided.type !== "transfer.voided") throw new Error(`unexpected ${voided.type}`);
    expect(voided.reason).toBe("receiver closed");
    expectMove(voided.journal, SYSTEM_ACCOUNT.transit, WALLET, 400n);
  });

  test("reserve then void nets to zero on the wallet and on transit", () => {
    const reserved = step(activeWallet(1000n), reserve("t-1", 400n));
    const voided = step(reserved.next, { type: "transfer.void", transferId: "t-1", journalId: "j-v", reason: "r" });
    const postings = [...reserved.effects, ...voided.effects].flatMap((e) => ("journal" in e && e.journal ? e.journal.postings : []));
    const net = (account: string) => postings.filter((p) => p.account === account).reduce((s, p) => s + p.amount, 0n);
    expect(net(WALLET)).toBe(0n);
    expect(net(SYSTEM_ACCOUNT.transit)).toBe(0n);
  });

  test("settling or voiding a transfer that is not pending here is refused with INVALID_TRANSITION", () => {
    const reserved = run(activeWallet(1000n), reserve("t-1", 400n));
    expectRejected(reserved, { type: "transfer.settle", transferId: "t-unknown" }, "INVALID_TRANSITION");
    const settled = run(reserved, { type: "transfer.settle", transferId: "t-1" });
    expectRejected(settled, { type: "transfer.settle", transferId: "t-1" }, "INVALID_TRANSITION");
    expectRejected(settled, { type: "transfer.void", transferId: "t-1", journalId: "j-v", reason: "late" }, "INVALID_TRANSITION");
    const voided = run(reserved, { type: "transfer.void", transferId: "t-1", journalId: "j-v", reason: "r" });
    expectRejected(voided, { type: "transfer.settle", transferId: "t-1" }, "INVALID_TRANSITION");
    expectRejected(voided, { type: "transfer.void", transferId: "t-1", journalId: "j-v2", reason: "again" }, "INVALID_TRANSITION");
  });
});

describe("transfers with a chama", () => {
  const toChama = (transferId: string, amount: bigint): Command => ({ type: "transfer.reserve", transferId, journalId: `j-${transferId}`, toChamaId: "c-1", amount });

  test("a contribution reserves like any transfer, names the chama, and attributes it to the wallet's owner", () => {
    const { next, effects } = step(activeWallet(1000n), toChama("t-c", 250n));
    expect(next.context.posted).toBe(750n);
    expect(next.context.outgoing).toEqual({ "t-c": { amount: 250n, toChamaId: "c-1" } });
    const reserved = effects[0]!;
    if (reserved.type !== "transfer.reserved") throw new Error(`unexpected ${reserved.type}`);
    expect(reserved).toMatchObject({ toChamaId: "c-1", memberId: "owner-1", amount: 250n });
    expect(reserved.toWalletId).toBeUndefined();
    expectMove(reserved.journal, WALLET, SYSTEM_ACCOUNT.transit, 250n);
  });

  test("it settles or is voided (the money back) as a transfer to a wallet is, naming the chama", () => {
    const reserved = run(activeWallet(1000n), toChama("t-c", 250n));
    expect(step(reserved, { type: "transfer.settle", transferId: "t-c" }).effects).toEqual([
      { type: "transfer.settled", walletId: WALLET, asset: "USD", at: AT, transferId: "t-c", toChamaId: "c-1", amount: 250n },
    ]);
    const { next, effects } = step(reserved, { type: "transfer.void", transferId: "t-c", journalId: "j-v", reason: "NOT_A_MEMBER" });
    expect(next.context.posted).toBe(1000n);
    expect(effects[0]).toMatchObject({ type: "transfer.voided", toChamaId: "c-1", reason: "NOT_A_MEMBER" });
  });

  test("it is refused beyond the available balance, and by a frozen wallet", () => {
    expectRejected(activeWallet(100n), toChama("t-c", 250n), "INSUFFICIENT_FUNDS");
    expectRejected(run(activeWallet(1000n), freeze), toChama("t-c", 250n), "WALLET_FROZEN");
  });

  test("a chama's withdrawal paid into the wallet is credited from transit, naming the chama", () => {
    const { next, effects } = step(activeWallet(10n), { type: "transfer.credit", transferId: "wd-1", journalId: "j-c", fromChamaId: "c-1", toMemberId: "owner-1", asset: "USD", amount: 300n });
    expect(next.context.posted).toBe(310n);
    const credited = effects[0]!;
    if (credited.type !== "transfer.credited") throw new Error(`unexpected ${credited.type}`);
    expect(credited).toMatchObject({ fromChamaId: "c-1", transferId: "wd-1" });
    expectMove(credited.journal, SYSTEM_ACCOUNT.transit, WALLET, 300n);
    expectRejected(run(activeWallet(), freeze), { type: "transfer.credit", transferId: "wd-1", journalId: "j-c", fromChamaId: "c-1", toMemberId: "owner-1", asset: "USD", amount: 300n }, "WALLET_FROZEN");
  });

  test("a chama's payout is refused by a wallet that is not the member's, whatever the request named", () => {
    expectRejected(activeWallet(10n), { type: "transfer.credit", transferId: "wd-2", journalId: "j-c", fromChamaId: "c-1", toMemberId: "someone-else", asset: "USD", amount: 300n }, "WALLET_NOT_FOUND");
  });
});

test("a wallet restored from its persisted value and context behaves exactly like the live one", () => {
  // The host persists { value, context } and restores it with resolveState after passivation or a restart.
  const live: Snapshot = run(activeWallet(1000n), withdraw("wd-1", 100n), reserve("t-1", 200n), freeze);
  const restored = walletMachine.resolveState({ value: live.value, context: live.context });
  const commands: Command[] = [
    { type: "transfer.settle", transferId: "t-1" },
    { type: "withdrawal.complete", withdrawalId: "wd-1", journalId: "j-wd" },
    { type: "wallet.payment", journalId: "j-p", amount: 1n },
  ];
  for (const command of commands) {
    const a = step(live, command);
    const b = step(restored, command);
    expect(b.effects).toEqual(a.effects);
    expect(b.next.value).toEqual(a.next.value);
    expect(b.next.context).toEqual(a.next.context);
  }
});
