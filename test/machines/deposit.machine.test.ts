import { describe, expect, test } from "bun:test";
import { initialTransition, transition } from "xstate";
import type { DepositCommand, DepositEffect, DepositRejectionCode } from "../../machines/deposit.events";
import { DEPOSIT_LIMITS, depositMachine, refundableOf } from "../../machines/deposit.machine";

/**
 * The deposit machine on its own: commands in, state and effects out, no actor, no Stripe. Each
 * test is one rule a card deposit keeps whatever Stripe's events say and in whatever order.
 */
type Snapshot = ReturnType<typeof depositMachine.resolveState>;
type Command = DepositCommand extends infer C ? (C extends DepositCommand ? Omit<C, "at"> : never) : never;

const AT = "2024-01-01T00:00:00.000Z";
const DEPOSIT = "0193a2b4-8f90-7a1b-9c2d-3e4f5a6b7c8d";

function step(snapshot: Snapshot, command: Command): { next: Snapshot; effects: DepositEffect[] } {
  const [next, actions] = transition(depositMachine, snapshot, { ...command, at: AT } as DepositCommand);
  const effects = (actions as unknown as { type: string; params?: { event: DepositEffect } }[]).flatMap((a) => (a.type === "xstate.emit" ? [a.params!.event] : []));
  return { next, effects };
}

function run(snapshot: Snapshot, ...commands: Command[]): Snapshot {
  for (const command of commands) {
    const { next, effects } = step(snapshot, command);
    if (!effects.length || effects.some((e) => e.type === "rejected")) throw new Error(`${command.type} did not succeed: ${JSON.stringify(effects, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
    snapshot = next;
  }
  return snapshot;
}

function expectRejected(snapshot: Snapshot, command: Command, code: DepositRejectionCode): void {
  const { next, effects } = step(snapshot, command);
  expect(effects).toEqual([{ type: "rejected", code, detail: expect.any(String) }]);
  expect(next.value).toEqual(snapshot.value);
  expect(next.context).toEqual(snapshot.context);
}

const open: Command = { type: "deposit.open", depositId: DEPOSIT, walletId: "w-1", ownerId: "alice", asset: "USD", amount: 10_000n, paymentIntentId: "pi_1" };
const paid = (amountReceived = 10_000n, currency = "USD"): Command => ({ type: "deposit.payment", status: "succeeded", amountReceived, currency });
const refund = (refundId: string, amount?: bigint): Command => ({ type: "deposit.refund.request", refundId, ...(amount === undefined ? {} : { amount }) });
const report = (refundId: string, status: "pending" | "succeeded" | "failed" | "canceled", amount = 1_000n, stripeRefundId = `re_${refundId}`): Command => ({
  type: "deposit.refund.report",
  refundId,
  stripeRefundId,
  amount,
  status,
});
const dispute = (status: "open" | "won" | "lost", amount = 10_000n, disputeId = "du_1"): Command => ({ type: "deposit.dispute", disputeId, amount, status });

const unopened = (): Snapshot => initialTransition(depositMachine, { depositId: DEPOSIT })[0];
const pending = () => run(unopened(), open);
const succeeded = () => run(pending(), paid());

describe("a deposit's payment", () => {
  test("an unopened deposit refuses everything but opening, as not found", () => {
    expectRejected(unopened(), paid(), "DEPOSIT_NOT_FOUND");
    expect(pending().value).toBe("pending");
  });

  test("is credited once, by what Stripe says it received, when Stripe says it succeeded", () => {
    const { next, effects } = step(pending(), paid(9_999n));
    expect(next.value).toBe("succeeded");
    expect(next.context.received).toBe(9_999n);
    expect(effects).toEqual([expect.objectContaining({ type: "deposit.succeeded", amount: 9_999n, move: "credit" })]);
    expectRejected(next, paid(9_999n), "INVALID_TRANSITION");
  });

  test("a payment in another currency than the wallet's credits nothing", () => {
    expectRejected(pending(), paid(10_000n, "EUR"), "ASSET_MISMATCH");
  });

  test("a declined card fails the deposit, and a later success (another card) still credits it", () => {
    const failed = run(pending(), { type: "deposit.payment", status: "failed", amountReceived: 0n, currency: "USD", reason: "card_declined" });
    expect(failed.value).toBe("failed");
    expectRejected(failed, refund("r-1"), "INVALID_TRANSITION");
    expect(run(failed, paid()).value).toBe("succeeded");
  });

  test("a failure reported after the success is stale and changes nothing", () => {
    expectRejected(succeeded(), { type: "deposit.payment", status: "failed", amountReceived: 0n, currency: "USD" }, "INVALID_TRANSITION");
  });

  test("a canceled deposit takes nothing more", () => {
    const canceled = run(pending(), { type: "deposit.payment", status: "canceled", amountReceived: 0n, currency: "USD" });
    expect(canceled.value).toBe("canceled");
    expectRejected(canceled, paid(), "INVALID_TRANSITION");
    expectRejected(canceled, dispute("open"), "INVALID_TRANSITION");
  });
});

describe("refunds", () => {
  test("never add up to more than was received", () => {
    let s = succeeded();
    expectRejected(s, refund("r-big", 10_001n), "REFUND_EXCEEDS_DEPOSIT");
    s = run(s, refund("r-1", 6_000n));
    expect(refundableOf(s.context)).toBe(4_000n);
    expectRejected(s, refund("r-2", 4_001n), "REFUND_EXCEEDS_DEPOSIT");
    s = run(s, refund("r-2"));
    expect(s.context.refunds["r-2"]!.amount).toBe(4_000n);
    expectRejected(s, refund("r-3"), "REFUND_EXCEEDS_DEPOSIT");
  });

  test("a second full refund is refused whether the first is still on its way or done", () => {
    const asked = run(succeeded(), refund("r-1"));
    expectRejected(asked, refund("r-2"), "REFUND_EXCEEDS_DEPOSIT");
    const done = run(asked, report("r-1", "succeeded", 10_000n));
    expect(done.value).toBe("refunded");
    expectRejected(done, refund("r-2"), "REFUND_EXCEEDS_DEPOSIT");
  });

  test("a refund asked for first debits the wallet (its saga's first step), and one that fails gives the money back", () => {
    const { effects } = step(succeeded(), refund("r-1", 1_000n));
    expect(effects).toEqual([expect.objectContaining({ type: "deposit.refund.changed", status: "requested", move: "refund_debit" })]);
    const failed = step(run(succeeded(), refund("r-1", 1_000n), report("r-1", "pending")), report("r-1", "failed"));
    expect(failed.effects).toEqual([expect.objectContaining({ status: "failed", from: "pending", move: "refund_return" })]);
    expect(refundableOf(failed.next.context)).toBe(10_000n);
  });

  test("a refund the wallet could not pay is canceled, before Stripe hears of it, and frees its amount", () => {
    const s = run(succeeded(), refund("r-1"), { type: "deposit.refund.cancel", refundId: "r-1", reason: "INSUFFICIENT_FUNDS" });
    expect(s.context.refunds["r-1"]!.status).toBe("canceled");
    expect(refundableOf(s.context)).toBe(10_000n);
    expectRejected(s, { type: "deposit.refund.cancel", refundId: "r-1", reason: "again" }, "INVALID_TRANSITION");
  });

  test("a refund's reports only move it forward: repeated or stale ones change nothing", () => {
    const s = run(succeeded(), refund("r-1", 1_000n), report("r-1", "succeeded"));
    expectRejected(s, report("r-1", "succeeded"), "INVALID_TRANSITION");
    expectRejected(s, report("r-1", "pending"), "INVALID_TRANSITION");
    expect(s.value).toBe("partially_refunded");
  });

  test("a refund made at Stripe directly is booked as it is reported, and debits the wallet whatever it holds", () => {
    const { next, effects } = step(succeeded(), report("ext-1", "succeeded", 2_500n, "re_dashboard"));
    expect(effects).toEqual([expect.objectContaining({ refundId: "ext-1", external: true, status: "succeeded", move: "refund_force_debit" })]);
    expect(next.value).toBe("partially_refunded");
  });

  test("a refund reported before the payment's success still ends with the right amounts", () => {
    const early = run(pending(), report("ext-1", "succeeded", 3_000n, "re_early"));
    expect(early.value).toBe("pending");
    const s = run(early, paid());
    expect(s.value).toBe("partially_refunded");
    expect(refundableOf(s.context)).toBe(7_000n);
  });

  test(`a deposit takes at most ${DEPOSIT_LIMITS.refundsRequestedMax} refunds asked through Coffer`, () => {
    let s = succeeded();
    for (let i = 0; i < DEPOSIT_LIMITS.refundsRequestedMax; i++) s = run(s, refund(`r-${i}`, 1n));
    expectRejected(s, refund("one-more", 1n), "LIMIT_EXCEEDED");
  });
});

describe("disputes", () => {
  test("a dispute takes its amount at once and blocks refunds; won, it gives it back", () => {
    const opened = step(succeeded(), dispute("open", 4_000n));
    expect(opened.next.value).toBe("disputed");
    expect(opened.effects).toEqual([expect.objectContaining({ status: "open", move: "dispute_debit" })]);
    expectRejected(opened.next, refund("r-1", 1n), "INVALID_TRANSITION");
    const won = step(opened.next, dispute("won", 4_000n));
    expect(won.next.value).toBe("succeeded");
    expect(won.effects).toEqual([expect.objectContaining({ status: "won", from: "open", move: "dispute_return" })]);
  });

  test("lost, the money stays gone and cannot be refunded", () => {
    const lost = step(run(succeeded(), dispute("open")), dispute("lost"));
    expect(lost.next.value).toBe("charged_back");
    expect(lost.effects[0]).not.toHaveProperty("move");
    expectRejected(lost.next, refund("r-1"), "REFUND_EXCEEDS_DEPOSIT");
  });

  test("closed before it was opened (events out of order): lost takes the money once, won never did", () => {
    const lostFirst = step(succeeded(), dispute("lost"));
    expect(lostFirst.effects).toEqual([expect.objectContaining({ status: "lost", move: "dispute_debit" })]);
    expectRejected(lostFirst.next, dispute("open"), "INVALID_TRANSITION");
    const wonFirst = step(succeeded(), dispute("won"));
    expect(wonFirst.effects[0]).not.toHaveProperty("move");
    expectRejected(wonFirst.next, dispute("open"), "INVALID_TRANSITION");
  });

  test("a dispute reported before the payment's success is held until it arrives", () => {
    const early = run(pending(), dispute("open", 5_000n));
    expect(early.value).toBe("pending");
    expect(run(early, paid()).value).toBe("disputed");
  });
});
