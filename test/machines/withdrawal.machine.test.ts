import { describe, expect, test } from "bun:test";
import { SYSTEM_ACCOUNT } from "../../machines/journal";
import { availableOf, heldOf } from "../../machines/wallet.machine";
import { nextWithdrawalStatus, type WithdrawalStatus, type WithdrawalStep } from "../../machines/withdrawal.machine";
import { activeWallet, type Command, expectMove, expectRejected, run, type Snapshot, step, WALLET } from "./drive";

const STEPS: WithdrawalStep[] = ["process", "complete", "fail", "cancel", "return", "hold", "release", "reject"];

/** The whole legal table; every pair not listed here must be refused. */
const LEGAL: Record<WithdrawalStatus, Partial<Record<WithdrawalStep, WithdrawalStatus>>> = {
  requested: { process: "processing", complete: "completed", fail: "failed", cancel: "cancelled", hold: "manual_review" },
  // Held by transaction monitoring: only a platform admin's release or rejection moves it.
  manual_review: { release: "requested", reject: "rejected" },
  processing: { complete: "completed", fail: "failed" },
  completed: { return: "returned" },
  failed: {},
  cancelled: {},
  returned: {},
  rejected: {},
};

describe("the withdrawal status table", () => {
  for (const [status, legal] of Object.entries(LEGAL) as [WithdrawalStatus, Partial<Record<WithdrawalStep, WithdrawalStatus>>][]) {
    for (const s of STEPS) {
      const expected = legal[s];
      test(`${s} from ${status} ${expected ? `goes to ${expected}` : "is refused"}`, () => {
        expect(nextWithdrawalStatus(status, s)).toBe(expected);
      });
    }
  }
});

const destination = { masked: { type: "crypto", network: "ethereum", address: "****" }, sealed: { kid: "e1", iv: "iv", ct: "ct", tag: "tag" } };
const request: Command = { type: "withdrawal.request", withdrawalId: "wd-1", amount: 300n, destination };
const processStep: Command = { type: "withdrawal.process", withdrawalId: "wd-1" };
const complete: Command = { type: "withdrawal.complete", withdrawalId: "wd-1", journalId: "j-wd" };
const fail: Command = { type: "withdrawal.fail", withdrawalId: "wd-1", reason: "bank said no" };
const cancel: Command = { type: "withdrawal.cancel", withdrawalId: "wd-1", reason: "user changed mind" };
const ALL_STEPS = [processStep, complete, fail, cancel];

const requested = (): Snapshot => run(activeWallet(1000n), request);

describe("withdrawals on a wallet", () => {
  test("a request holds the amount: posted stays, available drops", () => {
    const { next, effects } = step(activeWallet(1000n), request);
    expect(next.context.posted).toBe(1000n);
    expect(heldOf(next.context)).toBe(300n);
    expect(availableOf(next.context)).toBe(700n);
    expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", withdrawalId: "wd-1", amount: 300n, status: "requested", destination })]);
  });

  test("a request above the available balance is refused with INSUFFICIENT_FUNDS", () => {
    expectRejected(activeWallet(299n), request, "INSUFFICIENT_FUNDS");
  });

  test("process keeps the hold and marks the withdrawal processing", () => {
    const { next, effects } = step(requested(), processStep);
    expect(next.context.withdrawals).toEqual({ "wd-1": { amount: 300n, status: "processing" } });
    expect(availableOf(next.context)).toBe(700n);
    expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", status: "processing" })]);
    expect("journal" in effects[0]!).toBe(false);
  });

  for (const [name, start] of [["requested", requested], ["processing", () => run(requested(), processStep)]] as const) {
    test(`complete from ${name} posts the hold out to the withdrawals account`, () => {
      const { next, effects } = step(start(), complete);
      expect(next.context.posted).toBe(700n);
      expect(heldOf(next.context)).toBe(0n);
      expect(availableOf(next.context)).toBe(700n);
      const changed = effects[0]!;
      if (changed.type !== "withdrawal.changed") throw new Error(`unexpected ${changed.type}`);
      expect(changed.status).toBe("completed");
      expect(changed.journal?.kind).toBe("withdrawal");
      expectMove(changed.journal, WALLET, SYSTEM_ACCOUNT.withdrawals, 300n);
    });

    test(`fail from ${name} releases the hold and moves no money`, () => {
      const { next, effects } = step(start(), fail);
      expect(next.context.posted).toBe(1000n);
      expect(availableOf(next.context)).toBe(1000n);
      expect(next.context.withdrawals).toEqual({});
      expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", status: "failed", reason: "bank said no" })]);
      expect("journal" in effects[0]!).toBe(false);
    });
  }

  test("cancel from requested releases the hold", () => {
    const { next, effects } = step(requested(), cancel);
    expect(availableOf(next.context)).toBe(1000n);
    expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", status: "cancelled", reason: "user changed mind" })]);
  });

  test("cancel while processing is refused with INVALID_TRANSITION and the hold stays", () => {
    const processing = run(requested(), processStep);
    expectRejected(processing, cancel, "INVALID_TRANSITION");
    expectRejected(processing, processStep, "INVALID_TRANSITION");
    expect(heldOf(processing.context)).toBe(300n);
  });

  for (const [name, last] of [["completed", complete], ["failed", fail], ["cancelled", cancel]] as const) {
    test(`every step after ${name} is refused with INVALID_TRANSITION and changes nothing`, () => {
      const finished = run(requested(), last);
      for (const s of ALL_STEPS) expectRejected(finished, s, "INVALID_TRANSITION");
    });
  }

  test("complete after cancel does not take the money a second way", () => {
    const cancelled = run(requested(), cancel);
    expectRejected(cancelled, complete, "INVALID_TRANSITION");
    expect(cancelled.context.posted).toBe(1000n);
  });

  test("a step for a withdrawal this wallet does not have is refused with INVALID_TRANSITION", () => {
    const s = requested();
    for (const command of ALL_STEPS) expectRejected(s, { ...command, withdrawalId: "wd-other" } as Command, "INVALID_TRANSITION");
  });

  test("two withdrawals are independent: finishing one leaves the other's hold", () => {
    const both = run(requested(), { ...request, withdrawalId: "wd-2", amount: 200n } as Command);
    const after = run(both, complete);
    expect(after.context.withdrawals).toEqual({ "wd-2": { amount: 200n, status: "requested" } });
    expect(after.context.posted).toBe(700n);
    expect(availableOf(after.context)).toBe(500n);
  });
});

describe("withdrawals paid out through Stripe (the payout worker's steps)", () => {
  const send: Command = { type: "withdrawal.payout.send", withdrawalId: "wd-1" };
  const paid: Command = { type: "withdrawal.payout.complete", withdrawalId: "wd-1", journalId: "j-paid" };
  const failed: Command = { type: "withdrawal.payout.fail", withdrawalId: "wd-1", reason: "stripe: account_closed" };
  const returned: Command = { type: "withdrawal.payout.return", withdrawalId: "wd-1", journalId: "j-back", amount: 300n, reason: "stripe: account_closed" };

  test("sent keeps the hold; paid posts it to system:stripe_payouts", () => {
    const sent = run(requested(), send);
    expect(sent.context.withdrawals).toEqual({ "wd-1": { amount: 300n, status: "processing" } });
    const { next, effects } = step(sent, paid);
    expect(next.context.posted).toBe(700n);
    expect(heldOf(next.context)).toBe(0n);
    const changed = effects[0]!;
    if (changed.type !== "withdrawal.changed") throw new Error(`unexpected ${changed.type}`);
    expect(changed.status).toBe("completed");
    expectMove(changed.journal, WALLET, SYSTEM_ACCOUNT.stripePayouts, 300n);
  });

  test("failed releases the hold and moves nothing", () => {
    const { next, effects } = step(run(requested(), send), failed);
    expect(availableOf(next.context)).toBe(1000n);
    expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", status: "failed", reason: "stripe: account_closed" })]);
  });

  test("a paid payout the bank returned brings the money back from system:stripe_payouts", () => {
    const completed = run(run(requested(), send), paid);
    const { next, effects } = step(completed, returned);
    expect(next.context.posted).toBe(1000n);
    const changed = effects[0]!;
    if (changed.type !== "withdrawal.changed") throw new Error(`unexpected ${changed.type}`);
    expect(changed.status).toBe("returned");
    expect(changed.journal?.kind).toBe("withdrawal_return");
    expectMove(changed.journal, SYSTEM_ACCOUNT.stripePayouts, WALLET, 300n);
  });

  test("after it ended, the payout steps are refused with INVALID_TRANSITION", () => {
    for (const last of [paid, failed, cancel]) {
      const finished = run(requested(), last);
      for (const s of [send, paid, failed]) expectRejected(finished, s, "INVALID_TRANSITION");
    }
  });
});
