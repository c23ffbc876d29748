import { describe, expect, test } from "bun:test";
import { availableOf, heldOf } from "../../machines/wallet.machine";
import { chamaMachine } from "../../machines/chama.machine";
import type { ChamaRejectionCode } from "../../machines/chama.events";
import { walletMachine } from "../../machines/wallet.machine";
import { activeWallet, type Command, expectRejected, run, type Snapshot, step } from "./drive";
import * as chamaDrive from "./chama.drive";

/**
 * Transaction monitoring's hold (src/monitoring/): a requested withdrawal parked in manual review
 * holds its amount and cannot be paid out, by a processor or by the Stripe payout worker, until a
 * platform admin releases it (it continues as before) or rejects it (the hold is released).
 */
const destination = { masked: { type: "bank", account: "****3000" }, sealed: { kid: "e1", iv: "iv", ct: "ct", tag: "tag" } };
const request: Command = { type: "withdrawal.request", withdrawalId: "wd-1", amount: 300n, destination };
const hold: Command = { type: "withdrawal.hold", withdrawalId: "wd-1", reason: "held for review" };
const release: Command = { type: "withdrawal.release", withdrawalId: "wd-1", reason: "released after review" };
const reject: Command = { type: "withdrawal.reject", withdrawalId: "wd-1", reason: "rejected in review" };
const PAYING: Command[] = [
  { type: "withdrawal.process", withdrawalId: "wd-1" },
  { type: "withdrawal.complete", withdrawalId: "wd-1", journalId: "j-wd" },
  { type: "withdrawal.fail", withdrawalId: "wd-1" },
  { type: "withdrawal.cancel", withdrawalId: "wd-1" },
  { type: "withdrawal.payout.send", withdrawalId: "wd-1" },
  { type: "withdrawal.payout.complete", withdrawalId: "wd-1", journalId: "j-po" },
  { type: "withdrawal.payout.fail", withdrawalId: "wd-1" },
];

const held = (): Snapshot => run(activeWallet(1000n), request, hold);

describe("a wallet withdrawal held by monitoring", () => {
  test("a hold parks a requested withdrawal in manual_review and keeps its amount held", () => {
    const { next, effects } = step(run(activeWallet(1000n), request), hold);
    expect(next.context.withdrawals).toEqual({ "wd-1": { amount: 300n, status: "manual_review" } });
    expect(heldOf(next.context)).toBe(300n);
    expect(availableOf(next.context)).toBe(700n);
    expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", withdrawalId: "wd-1", status: "manual_review", amount: 300n })]);
    expect("journal" in effects[0]!).toBe(false);
  });

  test("nothing pays out, fails or cancels a withdrawal in manual review", () => {
    const s = held();
    for (const command of PAYING) expectRejected(s, command, "INVALID_TRANSITION");
    expect(heldOf(s.context)).toBe(300n);
  });

  test("release sends it back to requested, where a processor takes it as before", () => {
    const released = step(held(), release);
    expect(released.next.context.withdrawals).toEqual({ "wd-1": { amount: 300n, status: "requested" } });
    expect(released.effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", status: "requested" })]);
    const completed = run(released.next, { type: "withdrawal.process", withdrawalId: "wd-1" }, { type: "withdrawal.complete", withdrawalId: "wd-1", journalId: "j-wd" });
    expect(completed.context.posted).toBe(700n);
    expect(heldOf(completed.context)).toBe(0n);
  });

  test("reject ends it as rejected and releases the hold: the money stays in the wallet", () => {
    const { next, effects } = step(held(), reject);
    expect(next.context.withdrawals).toEqual({});
    expect(next.context.posted).toBe(1000n);
    expect(availableOf(next.context)).toBe(1000n);
    expect(effects).toEqual([expect.objectContaining({ type: "withdrawal.changed", status: "rejected", reason: "rejected in review" })]);
    for (const command of [release, reject, hold, ...PAYING]) expectRejected(next, command, "INVALID_TRANSITION");
  });

  test("a withdrawal already processing (or ended) cannot be held, released or rejected", () => {
    const processing = run(activeWallet(1000n), request, { type: "withdrawal.process", withdrawalId: "wd-1" });
    for (const command of [hold, release, reject]) expectRejected(processing, command, "INVALID_TRANSITION");
    const requested = run(activeWallet(1000n), request);
    for (const command of [release, reject]) expectRejected(requested, command, "INVALID_TRANSITION");
  });

  test("a frozen wallet's withdrawal can still be held and decided (money already promised)", () => {
    const frozen = run(activeWallet(1000n), request, { type: "wallet.freeze" });
    const s = run(frozen, hold, release);
    expect(s.context.withdrawals["wd-1"]?.status).toBe("requested");
  });

  test("the wallet machine takes exactly the monitoring commands the bus knows", () => {
    for (const type of ["withdrawal.hold", "withdrawal.release", "withdrawal.reject"]) expect(walletMachine.events).toContain(type as never);
  });
});

describe("a chama withdrawal held by monitoring", () => {
  const { chama, run: runChama, step: stepChama } = chamaDrive;
  const requested = () =>
    runChama(chama(), { type: "chama.withdrawal.request", withdrawalId: "cw-1", memberId: "dave", amount: 400n, destination } as chamaDrive.ChamaCmd);
  const holdIt: chamaDrive.ChamaCmd = { type: "chama.withdrawal.hold", withdrawalId: "cw-1", note: "held for review" };
  const platform = "admin#ops-1";

  const expectChamaRefused = (s: chamaDrive.ChamaSnapshot, command: chamaDrive.ChamaCmd, code: ChamaRejectionCode) => {
    const { next, effects } = stepChama(s, command);
    expect(effects).toEqual([{ type: "rejected", code, detail: expect.any(String) }]);
    expect(next.context).toEqual(s.context);
  };

  test("a hold parks a pending request in manual review, clearing approvals, by the system", () => {
    const approved = runChama(requested(), { type: "chama.withdrawal.review", withdrawalId: "cw-1", reviewerId: "alice", decision: "approve" });
    expect(approved.context.withdrawals["cw-1"]?.status).toBe("approved");
    const { next, effects } = stepChama(approved, holdIt);
    expect(next.context.withdrawals["cw-1"]).toMatchObject({ status: "manual_review", approvals: [], heldByPlatform: true });
    expect(effects[0]).toMatchObject({ type: "chama.withdrawal.changed", from: "approved", status: "manual_review", by: "system" });
    expect(effects.at(-1)).toMatchObject({ type: "chama.audit.recorded", actor: "system", action: "chama.withdrawal.hold" });
  });

  test("while the platform holds it, the chama's admins cannot approve or reject it, nor continue it", () => {
    const s = runChama(requested(), holdIt);
    expectChamaRefused(s, { type: "chama.withdrawal.review", withdrawalId: "cw-1", reviewerId: "alice", decision: "approve" }, "INVALID_TRANSITION");
    expectChamaRefused(s, { type: "chama.withdrawal.review", withdrawalId: "cw-1", reviewerId: "alice", decision: "reject" }, "INVALID_TRANSITION");
    expectChamaRefused(s, { type: "chama.withdrawal.continue", withdrawalId: "cw-1", by: "dave" }, "INVALID_TRANSITION");
  });

  test("a platform release hands it back to the chama's admins (manual review, approvals from scratch)", () => {
    const s = runChama(requested(), holdIt, { type: "chama.withdrawal.release", withdrawalId: "cw-1", by: platform, decision: "release", note: "looks fine" });
    expect(s.context.withdrawals["cw-1"]).toMatchObject({ status: "manual_review", approvals: [] });
    expect(s.context.withdrawals["cw-1"]?.heldByPlatform).toBeUndefined();
    const approved = runChama(s, { type: "chama.withdrawal.review", withdrawalId: "cw-1", reviewerId: "alice", decision: "approve" });
    expect(approved.context.withdrawals["cw-1"]?.status).toBe("approved");
  });

  test("a platform rejection ends it and releases its hold", () => {
    const before = runChama(requested(), holdIt);
    const { next, effects } = stepChama(before, { type: "chama.withdrawal.release", withdrawalId: "cw-1", by: platform, decision: "reject" });
    expect(next.context.withdrawals["cw-1"]).toBeUndefined();
    expect(next.context.ended.at(-1)).toMatchObject({ withdrawalId: "cw-1", status: "rejected" });
    expect(effects[0]).toMatchObject({ type: "chama.withdrawal.changed", status: "rejected", by: platform });
  });

  test("release of a request the platform does not hold is refused", () => {
    expectChamaRefused(requested(), { type: "chama.withdrawal.release", withdrawalId: "cw-1", by: platform, decision: "release" }, "INVALID_TRANSITION");
    const parkedByAdmin = runChama(requested(), { type: "chama.withdrawal.park", withdrawalId: "cw-1", by: "alice" });
    expectChamaRefused(parkedByAdmin, { type: "chama.withdrawal.release", withdrawalId: "cw-1", by: platform, decision: "reject" }, "INVALID_TRANSITION");
  });

  test("a request already paying out cannot be held", () => {
    const processing = runChama(
      requested(),
      { type: "chama.withdrawal.review", withdrawalId: "cw-1", reviewerId: "alice", decision: "approve" },
      { type: "chama.withdrawal.continue", withdrawalId: "cw-1", by: "dave" },
    );
    expectChamaRefused(processing, holdIt, "INVALID_TRANSITION");
  });

  test("the chama machine takes the monitoring commands", () => {
    for (const type of ["chama.withdrawal.hold", "chama.withdrawal.release"]) expect(chamaMachine.events).toContain(type as never);
  });
});
