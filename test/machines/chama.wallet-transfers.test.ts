import { describe, expect, test } from "bun:test";
import { availableOf, heldOf } from "../../machines/chama.context";
import { SYSTEM_ACTOR } from "../../machines/chama.events";
import { SYSTEM_ACCOUNT } from "../../machines/journal";
import { CHAMA, chama, type ChamaCmd, type ChamaSnapshot, expectRejected, run, single, step, unopened } from "./chama.drive";

/**
 * A chama meeting its members' wallets, in the pure machine: contributions from a member's wallet
 * (the transfer saga's `chama.transfer.credit`) and withdrawals paid into a member's wallet (posted
 * out to transit when continued, then settled or voided by the saga). By default (chama.drive.ts)
 * alice, bob and carol are admins, dave and erin members, dave has deposited 1000, one approval.
 */
const WALLET = "w-dave";

const contribution = (transferId: string, memberId = "dave", amount = 250n): ChamaCmd => ({
  type: "chama.transfer.credit",
  transferId,
  journalId: `j-${transferId}`,
  memberId,
  fromWalletId: WALLET,
  amount,
});
const requestIntoWallet = (withdrawalId: string, memberId = "dave", amount = 300n): ChamaCmd => ({
  type: "chama.withdrawal.request",
  withdrawalId,
  memberId,
  amount,
  destination: { masked: { type: "wallet", walletId: WALLET }, sealed: { kid: "k", iv: "i", ct: "c", tag: "t" } },
  toWalletId: WALLET,
});
const approve = (withdrawalId: string, reviewerId = "alice"): ChamaCmd => ({ type: "chama.withdrawal.review", withdrawalId, reviewerId, decision: "approve" });
const proceed = (withdrawalId: string, journal = true): ChamaCmd => ({
  type: "chama.withdrawal.continue",
  withdrawalId,
  by: "dave",
  ...(journal ? { journalId: `j-out-${withdrawalId}` } : {}),
});
const settle = (withdrawalId: string): ChamaCmd => ({ type: "chama.withdrawal.settle", withdrawalId });
const voidIt = (withdrawalId: string, reason = "WALLET_FROZEN"): ChamaCmd => ({ type: "chama.withdrawal.void", withdrawalId, journalId: `j-back-${withdrawalId}`, reason });

/** A withdrawal of 300 into dave's wallet, approved and continued: its money is in transit. */
function inTransit(s: ChamaSnapshot = chama()): ChamaSnapshot {
  return run(s, requestIntoWallet("wd-w"), approve("wd-w"), proceed("wd-w"));
}

describe("a contribution from a member's wallet", () => {
  test("moves the amount from transit into the chama and credits it to the member, with the transfer in the audit record", () => {
    const { next, effects } = step(chama(), contribution("t-1"));
    const credited = single(effects, "chama.transfer.credited");
    expect(credited).toMatchObject({ transferId: "t-1", memberId: "dave", fromWalletId: WALLET, amount: 250n, contributed: 1250n });
    expect(credited.journal).toEqual({
      id: "j-t-1",
      kind: "chama_contribution",
      asset: "KES",
      postings: [
        { account: SYSTEM_ACCOUNT.transit, amount: -250n },
        { account: CHAMA, amount: 250n },
      ],
    });
    expect(next.context.posted).toBe(1250n);
    expect(next.context.members.dave!.contributed).toBe(1250n);
    expect(single(effects, "chama.audit.recorded")).toMatchObject({
      actor: "dave",
      action: "chama.transfer.credit",
      target: "dave",
      before: { posted: 1000n, contributed: 1000n },
      after: { posted: 1250n, contributed: 1250n },
      via: "transfer:t-1",
    });
  });

  test("is refused with NOT_A_MEMBER for someone who is not (or no longer) a member, and changes nothing", () => {
    expectRejected(chama(), contribution("t-2", "stranger"), "NOT_A_MEMBER");
    const left = run(chama(), { type: "chama.member.remove", memberId: "erin", by: "erin" });
    expectRejected(left, contribution("t-3", "erin"), "NOT_A_MEMBER");
    const invited = run(chama(), { type: "chama.member.invite", memberId: "fay", role: "member", by: "alice" });
    expectRejected(invited, contribution("t-4", "fay"), "NOT_A_MEMBER");
  });

  test("is refused by a frozen chama (CHAMA_FROZEN), a closed one (CHAMA_CLOSED) and one that does not exist", () => {
    expectRejected(run(chama(), { type: "chama.freeze", by: "alice" }), contribution("t-5"), "CHAMA_FROZEN");
    const closed = run(chama({ deposits: {} }), { type: "chama.close", by: "alice" });
    expectRejected(closed, contribution("t-6"), "CHAMA_CLOSED");
    expectRejected(unopened(), contribution("t-7"), "CHAMA_NOT_FOUND");
  });
});

describe("a withdrawal paid into a member's wallet", () => {
  test("is requested and approved like any other, holding its amount", () => {
    const s = run(chama(), requestIntoWallet("wd-w"), approve("wd-w"));
    expect(s.context.withdrawals["wd-w"]).toMatchObject({ status: "approved", toWalletId: WALLET, amount: 300n });
    expect(heldOf(s.context)).toBe(300n);
    expect(availableOf(s.context)).toBe(700n);
  });

  test("continued, its hold becomes a posting to transit at once, and the effect names the wallet", () => {
    const before = run(chama(), requestIntoWallet("wd-w"), approve("wd-w"));
    const { next, effects } = step(before, proceed("wd-w"));
    const changed = single(effects, "chama.withdrawal.changed");
    expect(changed).toMatchObject({ from: "approved", status: "processing", toWalletId: WALLET, amount: 300n });
    expect(changed.journal?.postings).toEqual([
      { account: CHAMA, amount: -300n },
      { account: SYSTEM_ACCOUNT.transit, amount: 300n },
    ]);
    expect(changed.journal?.kind).toBe("chama_withdrawal");
    expect({ posted: next.context.posted, held: heldOf(next.context), available: availableOf(next.context) }).toEqual({ posted: 700n, held: 0n, available: 700n });
    expect(next.context.withdrawals["wd-w"]!.status).toBe("processing");
  });

  test("continuing it without the journal of its posting is refused (VALIDATION_FAILED); a bank withdrawal needs none", () => {
    expectRejected(run(chama(), requestIntoWallet("wd-w"), approve("wd-w")), proceed("wd-w", false), "VALIDATION_FAILED");
    const bank = run(chama(), { ...requestIntoWallet("wd-b"), toWalletId: undefined } as ChamaCmd, approve("wd-b"));
    expect(single(step(bank, proceed("wd-b", false)).effects, "chama.withdrawal.changed").status).toBe("processing");
  });

  test("settled (the wallet took it), it completes with no further posting, and the requester's withdrawn grows", () => {
    const { next, effects } = step(inTransit(), settle("wd-w"));
    const changed = single(effects, "chama.withdrawal.changed");
    expect(changed).toMatchObject({ from: "processing", status: "completed", by: SYSTEM_ACTOR, toWalletId: WALLET });
    expect(changed.journal).toBeUndefined();
    expect(next.context.posted).toBe(700n);
    expect(next.context.withdrawals["wd-w"]).toBeUndefined();
    expect(next.context.members.dave!.withdrawn).toBe(300n);
    expect(next.context.ended.at(-1)).toMatchObject({ withdrawalId: "wd-w", status: "completed" });
  });

  test("voided (the wallet refused), it fails and the money comes back from transit, available again", () => {
    const { next, effects } = step(inTransit(), voidIt("wd-w"));
    const changed = single(effects, "chama.withdrawal.changed");
    expect(changed).toMatchObject({ from: "processing", status: "failed", reason: "WALLET_FROZEN", by: SYSTEM_ACTOR });
    expect(changed.journal).toEqual({
      id: "j-back-wd-w",
      kind: "chama_withdrawal_void",
      asset: "KES",
      postings: [
        { account: SYSTEM_ACCOUNT.transit, amount: -300n },
        { account: CHAMA, amount: 300n },
      ],
    });
    expect({ posted: next.context.posted, held: heldOf(next.context), available: availableOf(next.context) }).toEqual({ posted: 1000n, held: 0n, available: 1000n });
    expect(next.context.members.dave!.withdrawn).toBe(0n);
    // It no longer counts toward the daily limits: it ended without paying out.
    expect(next.context.recent.some((r) => r.withdrawalId === "wd-w")).toBe(false);
  });

  test("settle and void happen once: a second of either, or one after the other, is INVALID_TRANSITION and moves nothing", () => {
    const settled = run(inTransit(), settle("wd-w"));
    expectRejected(settled, settle("wd-w"), "INVALID_TRANSITION");
    expectRejected(settled, voidIt("wd-w"), "INVALID_TRANSITION");
    const voided = run(inTransit(), voidIt("wd-w"));
    expectRejected(voided, voidIt("wd-w"), "INVALID_TRANSITION");
    expectRejected(voided, settle("wd-w"), "INVALID_TRANSITION");
  });

  test("settle or void before it is continued (out of order) is refused and moves nothing", () => {
    const approved = run(chama(), requestIntoWallet("wd-w"), approve("wd-w"));
    expectRejected(approved, settle("wd-w"), "INVALID_TRANSITION");
    expectRejected(approved, voidIt("wd-w"), "INVALID_TRANSITION");
  });

  test("a payout processor may not complete or fail it: Coffer does (INVALID_TRANSITION)", () => {
    expectRejected(inTransit(), { type: "chama.withdrawal.complete", withdrawalId: "wd-w", journalId: "j-x" }, "INVALID_TRANSITION");
    expectRejected(inTransit(), { type: "chama.withdrawal.fail", withdrawalId: "wd-w", reason: "no" }, "INVALID_TRANSITION");
  });

  test("settle and void are refused for a withdrawal paid out elsewhere", () => {
    const bank = run(chama(), { ...requestIntoWallet("wd-b"), toWalletId: undefined } as ChamaCmd, approve("wd-b"), proceed("wd-b", false));
    expectRejected(bank, settle("wd-b"), "INVALID_TRANSITION");
    expectRejected(bank, voidIt("wd-b"), "INVALID_TRANSITION");
  });

  test("a frozen chama still settles or voids a withdrawal already in transit, and cannot close while one is", () => {
    const frozen = run(inTransit(), { type: "chama.freeze", by: "alice" });
    expect(single(step(frozen, settle("wd-w")).effects, "chama.withdrawal.changed").status).toBe("completed");
    expect(single(step(frozen, voidIt("wd-w")).effects, "chama.withdrawal.changed").status).toBe("failed");
    const emptied = inTransit(chama({ deposits: { dave: 300n } }));
    expect(emptied.context.posted).toBe(0n);
    expectRejected(emptied, { type: "chama.close", by: "alice" }, "CHAMA_NOT_EMPTY");
  });

  test("a requester removed while it is in transit: it still settles, recorded against their former share", () => {
    const gone = run(inTransit(), { type: "chama.member.remove", memberId: "dave", by: "alice" });
    expect(gone.context.withdrawals["wd-w"]!.status).toBe("processing");
    const done = run(gone, settle("wd-w"));
    expect(done.context.former.dave).toMatchObject({ withdrawn: 300n });
  });
});
