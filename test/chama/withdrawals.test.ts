import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  BANK,
  BANK_ACCOUNT,
  expectOk,
  expectProblem,
  expectRefusedAndUnchanged,
  newChama,
  people,
  PROCESSOR,
  startChamaNode,
  user,
  verifyIsClean,
  type ChamaNode,
} from "./support";

/**
 * One chama withdrawal's life over real HTTP: who may move it, which steps follow which, what the
 * money does at each end, the limits at their exact edges, and expiry by the node's clock.
 */
let n: ChamaNode;
beforeAll(async () => {
  n = await startChamaNode("chamawithdrawals");
});
afterAll(() => n.t.stop());

const MINUTE = 60_000;

describe("a withdrawal's happy path", () => {
  test("request → approve → continue → complete moves the money once and records who took it", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const w = await c.requested(p.m1, "30.00");
    expect(w).toMatchObject({ chamaId: c.id, memberId: p.m1, asset: "USD", amount: "30.00", status: "pending_approval", approvals: [], rejections: [] });
    expect(typeof w.expiresAt).toBe("string");
    expect(await c.balance()).toEqual({ posted: "100.00", held: "30.00", available: "70.00" });

    const approved = expectOk(await c.step(w.id, "approve", p.a1, { note: "rent" }));
    expect(approved).toMatchObject({ status: "approved", approvals: [p.a1], rejections: [] });
    const processing = expectOk(await c.step(w.id, "continue", p.m1));
    expect(processing.status).toBe("processing");
    expect(await c.balance()).toEqual({ posted: "100.00", held: "30.00", available: "70.00" });

    const completed = expectOk(await c.step(w.id, "complete", undefined));
    expect(completed.status).toBe("completed");
    expect(await c.balance()).toEqual({ posted: "70.00", held: "0.00", available: "70.00" });
    expect((await c.member(p.m1)).withdrawn).toBe("30.00");
    expect(await c.journals("chama_withdrawal")).toBe(1);

    const detail = await c.withdrawal(w.id);
    expect(detail.status).toBe("completed");
    const reviews = await c.reviews(w.id);
    expect(reviews).toHaveLength(1);
    expect(reviews[0]).toMatchObject({ reviewerId: p.a1, decision: "approve", note: "rent", status: "approved" });
    await verifyIsClean(n.t);
  });

  test("a payout processor service (withdrawals:process) may complete; a member may not", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "20.00" });
    const w = await c.processing(p.m1, "5.00");
    expectProblem(await c.step(w.id, "complete", p.a1), 403, "FORBIDDEN");
    expectProblem(await c.step(w.id, "fail", p.m1), 403, "FORBIDDEN");
    expect((await c.withdrawal(w.id)).status).toBe("processing");
    expect(expectOk(await c.step(w.id, "complete", PROCESSOR)).status).toBe("completed");
    expect(await c.balance()).toEqual({ posted: "15.00", held: "0.00", available: "15.00" });
  });

  test("the destination is masked in every answer and never in the audit log", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "20.00" });
    const created = await c.request(p.m1, "5.00");
    expect(created.status).toBe(201);
    const w = created.body;
    await c.step(w.id, "approve", p.a2);
    const continued = await c.step(w.id, "continue", p.m1);
    for (const body of [created.body, continued.body, await c.withdrawal(w.id), await c.withdrawals(), await c.audit()]) {
      expect(JSON.stringify(body)).not.toContain(BANK_ACCOUNT);
    }
  });
});

describe("who may review (issue: requester never approves; only admins review)", () => {
  test("the requester, an admin, approving their own request is 403 FORBIDDEN and changes nothing", async () => {
    const p = people("a1", "a2", "a3");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], fund: "50.00" });
    const w = await c.requested(p.a1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.a1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "reject", p.a1), 403, "FORBIDDEN");
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "pending_approval", approvals: [], rejections: [] });
    expect(await c.reviews(w.id)).toEqual([]);
    // Another admin's approval still counts: the refusal left the request reviewable.
    expect(expectOk(await c.step(w.id, "approve", p.a2))).toMatchObject({ status: "approved", approvals: [p.a2] });
  });

  test("with approvalsRequired 2, the requester's own approval never makes up the count", async () => {
    const p = people("a1", "a2", "a3");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], fund: "50.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.a1, "10.00");
    expect(expectOk(await c.step(w.id, "approve", p.a2))).toMatchObject({ status: "pending_approval", approvals: [p.a2] });
    expectProblem(await c.step(w.id, "approve", p.a1), 403, "FORBIDDEN");
    expect((await c.withdrawal(w.id)).status).toBe("pending_approval");
    expect(expectOk(await c.step(w.id, "approve", p.a3))).toMatchObject({ status: "approved" });
  });

  test("an admin cannot approve the same request twice", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "50.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "10.00");
    expect(expectOk(await c.step(w.id, "approve", p.a2)).status).toBe("pending_approval");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.a2), 409, "INVALID_TRANSITION");
    expect((await c.withdrawal(w.id)).approvals).toEqual([p.a2]);
  });

  test("a sole admin cannot request: nobody else could approve it (409 NOT_ENOUGH_ADMINS)", async () => {
    const p = people("a1", "m1");
    const c = await newChama(n.t, { admins: [p.a1], members: [p.m1], fund: "30.00" });
    await expectRefusedAndUnchanged(c, () => c.request(p.a1, "1.00"), 409, "NOT_ENOUGH_ADMINS");
    // A plain member's request can still be approved by that admin.
    const w = await c.requested(p.m1, "1.00");
    expect(expectOk(await c.step(w.id, "approve", p.a1)).status).toBe("approved");
  });

  test("a platform admin is not a chama member and cannot approve", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "50.00" });
    const w = await c.requested(p.m1, "10.00");
    expectProblem(await c.step(w.id, "approve", undefined), 403, "NOT_A_MEMBER");
    expect((await c.withdrawal(w.id)).status).toBe("pending_approval");
  });
});

describe("illegal steps are 409 INVALID_TRANSITION", () => {
  test("reject after approve is refused and the approval stands", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "40.00" });
    const w = await c.requested(p.m1, "10.00");
    expect(expectOk(await c.step(w.id, "approve", p.a2)).status).toBe("approved");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "reject", p.a3, { note: "too late" }), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "reject", p.a2), 409, "INVALID_TRANSITION");
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "approved", approvals: [p.a2], rejections: [] });
    expect(await c.balance()).toEqual({ posted: "40.00", held: "10.00", available: "30.00" });
  });

  test("approve after reject is refused, and the rejection released the hold", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "40.00" });
    const w = await c.requested(p.m1, "10.00");
    expect(expectOk(await c.step(w.id, "reject", p.a2, { note: "no" }))).toMatchObject({ status: "rejected", rejections: [p.a2] });
    expect(await c.balance()).toEqual({ posted: "40.00", held: "0.00", available: "40.00" });
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.a3), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "reject", p.a3), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "continue", p.a1), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "cancel", p.a1), 409, "INVALID_TRANSITION");
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "rejected", approvals: [] });
  });

  test("the requester continuing or cancelling their own ended request is INVALID_TRANSITION, not FORBIDDEN", async () => {
    // The requester may continue and cancel their request; a step its status does not allow is a
    // 409, as it is for an admin. (A 403 would tell them they are not allowed, which is untrue.)
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "40.00" });
    const rejected = await c.requested(p.m1, "10.00");
    expectOk(await c.step(rejected.id, "reject", p.a2));
    await expectRefusedAndUnchanged(c, () => c.step(rejected.id, "continue", p.m1), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(rejected.id, "cancel", p.m1), 409, "INVALID_TRANSITION");
    const cancelled = await c.requested(p.m1, "10.00");
    expectOk(await c.step(cancelled.id, "cancel", p.m1));
    await expectRefusedAndUnchanged(c, () => c.step(cancelled.id, "cancel", p.m1), 409, "INVALID_TRANSITION");
  });

  test("rejectionsToReject 2: one rejection leaves it pending, the second rejects", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "40.00", rules: { approvalsRequired: 2, rejectionsToReject: 2 } });
    const w = await c.requested(p.m1, "10.00");
    expect(expectOk(await c.step(w.id, "reject", p.a1))).toMatchObject({ status: "pending_approval", rejections: [p.a1] });
    expect(expectOk(await c.step(w.id, "reject", p.a2))).toMatchObject({ status: "rejected" });
    expect(await c.balance()).toEqual({ posted: "40.00", held: "0.00", available: "40.00" });
  });

  test("continue before approval, complete before continue and cancel while processing are refused", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "40.00" });
    const w = await c.requested(p.m1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "continue", p.m1), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "complete", undefined), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "fail", undefined), 409, "INVALID_TRANSITION");
    await c.step(w.id, "approve", p.a1);
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "complete", undefined), 409, "INVALID_TRANSITION");
    expect(expectOk(await c.step(w.id, "continue", p.m1)).status).toBe("processing");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "cancel", p.m1), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "cancel", p.a1), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.a2), 409, "INVALID_TRANSITION");
    expect(expectOk(await c.step(w.id, "complete", undefined)).status).toBe("completed");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "fail", undefined), 409, "INVALID_TRANSITION");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "complete", undefined), 409, "INVALID_TRANSITION");
    expect(await c.balance()).toEqual({ posted: "30.00", held: "0.00", available: "30.00" });
  });

  test("only the requester or an admin continues or cancels", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "40.00" });
    const w = await c.requested(p.m1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "cancel", p.m2), 403, "FORBIDDEN");
    await c.step(w.id, "approve", p.a1);
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "continue", p.m2), 403, "FORBIDDEN");
    expect(expectOk(await c.step(w.id, "continue", p.a2)).status).toBe("processing");
  });

  test("an unknown withdrawal id is 404 WITHDRAWAL_NOT_FOUND", async () => {
    const p = people("a1", "a2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], fund: "10.00" });
    const unknown = crypto.randomUUID();
    expectProblem(await c.call("GET", `/withdrawals/${unknown}`, undefined, p.a1), 404, "WITHDRAWAL_NOT_FOUND");
    await expectRefusedAndUnchanged(c, () => c.step(unknown, "approve", p.a1), 404, "WITHDRAWAL_NOT_FOUND");
  });

  test("a withdrawal of another chama is not found through this one", async () => {
    const p = people("a1", "a2", "b1", "b2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], fund: "10.00" });
    const other = await newChama(n.t, { admins: [p.b1, p.b2], fund: "10.00" });
    const w = await other.requested(p.b1, "1.00");
    // a1 is an admin of c, and asks c about other's withdrawal.
    expectProblem(await c.call("GET", `/withdrawals/${w.id}`, undefined, p.a1), 404, "WITHDRAWAL_NOT_FOUND");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.a1), 404, "WITHDRAWAL_NOT_FOUND");
    expect((await other.withdrawal(w.id)).status).toBe("pending_approval");
  });
});

describe("a failed payout", () => {
  test("releases the hold, restores the available balance, and the audit log shows the fail", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const w = await c.processing(p.m1, "25.00");
    expect(await c.balance()).toEqual({ posted: "100.00", held: "25.00", available: "75.00" });

    const failed = expectOk(await c.step(w.id, "fail", undefined, { reason: "bank said no" }));
    expect(failed.status).toBe("failed");
    expect(await c.balance()).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    expect((await c.withdrawal(w.id)).status).toBe("failed");
    expect((await c.member(p.m1)).withdrawn).toBe("0.00");
    expect(await c.journals("chama_withdrawal")).toBe(0);

    const [latest] = await c.audit();
    expect(latest).toMatchObject({ action: "chama.withdrawal.fail", target: w.id, before: { status: "processing" }, after: { status: "failed" } });
    expect(typeof latest.actor).toBe("string");
    expect(typeof latest.at).toBe("string");
    expect(JSON.stringify(latest)).toContain("bank said no");

    // The released money can be requested again, all of it.
    await c.requested(p.m1, "100.00");
    await verifyIsClean(n.t);
  });
});

describe("limits at their exact edges", () => {
  test("maxPerDay 50.00: exactly 50.00 is allowed, one cent more is 422 LIMIT_EXCEEDED", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "200.00", rules: { maxPerDay: "50.00" } });
    expect((await c.view()).rules.maxPerDay).toBe("50.00");
    await c.requested(p.m1, "20.00");
    await c.requested(p.m2, "29.99");
    const last = await c.requested(p.m1, "0.01"); // 50.00 exactly
    await expectRefusedAndUnchanged(c, () => c.request(p.m2, "0.01"), 422, "LIMIT_EXCEEDED");
    expect(await c.balance()).toEqual({ posted: "200.00", held: "50.00", available: "150.00" });

    // A cancelled request stops counting: its cent is free again, and only its cent.
    expect(expectOk(await c.step(last.id, "cancel", p.m1, { reason: "changed my mind" })).status).toBe("cancelled");
    await c.requested(p.m2, "0.01");
    await expectRefusedAndUnchanged(c, () => c.request(p.m2, "0.01"), 422, "LIMIT_EXCEEDED");
  });

  test("a rejected request stops counting toward maxPerDay; a completed one keeps counting", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "200.00", rules: { maxPerDay: "50.00" } });
    const a = await c.requested(p.m1, "30.00");
    const b = await c.requested(p.m1, "20.00");
    expectProblem(await c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");
    expect(expectOk(await c.step(b.id, "reject", p.a1)).status).toBe("rejected");
    await c.requested(p.m1, "20.00");
    expectProblem(await c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");

    await c.step(a.id, "approve", p.a2);
    await c.step(a.id, "continue", p.m1);
    expect(expectOk(await c.step(a.id, "complete", undefined)).status).toBe("completed");
    expectProblem(await c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");
  });

  test("the daily window rolls: 24 hours later the same amount is allowed again", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "200.00", rules: { maxPerDay: "50.00", requestLifetimeMs: 90 * 86_400_000 } });
    await c.requested(p.m1, "50.00");
    expectProblem(await c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");
    n.clock.advance(86_400_000 + 1_000);
    await c.requested(p.m1, "50.00");
    expectProblem(await c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");
  });

  test("the daily window's exact edge: a request 24 hours old no longer counts, one a millisecond younger does", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "200.00", rules: { maxPerDay: "50.00", requestLifetimeMs: 90 * 86_400_000 } });
    n.clock.freeze();
    try {
      await c.requested(p.m1, "50.00");
      n.clock.advance(86_400_000 - 1);
      await expectRefusedAndUnchanged(c, () => c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");
      n.clock.advance(1);
      await c.requested(p.m1, "50.00");
      await expectRefusedAndUnchanged(c, () => c.request(p.m1, "0.01"), 422, "LIMIT_EXCEEDED");
    } finally {
      n.clock.thaw();
    }
  });

  test("maxPerWithdrawal 10.00: 10.00 is allowed, 10.01 is 422 LIMIT_EXCEEDED", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00", rules: { maxPerWithdrawal: "10.00" } });
    await c.requested(p.m1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "10.01"), 422, "LIMIT_EXCEEDED");
    // null lifts the limit.
    await c.setRules({ maxPerWithdrawal: null });
    expect((await c.view()).rules.maxPerWithdrawal).toBeNull();
    await c.requested(p.m1, "10.01");
  });

  test("maxWithdrawalsPerWindow 2: the third request in the window is 422 LIMIT_EXCEEDED", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00", rules: { maxWithdrawalsPerWindow: 2, windowMs: 3_600_000 } });
    await c.requested(p.m1, "1.00");
    await c.requested(p.m1, "1.00");
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "1.00"), 422, "LIMIT_EXCEEDED");
  });

  test("a request above the available balance is 409 INSUFFICIENT_FUNDS, at it is allowed", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "10.00" });
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "10.01"), 409, "INSUFFICIENT_FUNDS");
    await c.requested(p.m1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "0.01"), 409, "INSUFFICIENT_FUNDS");
  });
});

describe("expiry by the node's clock", () => {
  test("an expired request cannot be approved; the expiry worker ends it and releases the hold", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00", rules: { requestLifetimeMs: MINUTE } });
    expect((await c.view()).rules.requestLifetimeMs).toBe(MINUTE);
    const w = await c.requested(p.m1, "10.00");
    expect(Date.parse(w.expiresAt) - n.clock.now().getTime()).toBeLessThanOrEqual(MINUTE);
    expect(Date.parse(w.expiresAt) - n.clock.now().getTime()).toBeGreaterThan(MINUTE - 30_000);

    n.clock.advance(MINUTE + 1_000);
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.a1), 409, "INVALID_TRANSITION");
    expect(await c.balance()).toEqual({ posted: "30.00", held: "10.00", available: "20.00" });

    // (The node's own expiry pump may have got there first; either way it is expired now.)
    await n.t.node.chamaExpiry.runOnce();
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "expired" });
    expect(await c.balance()).toEqual({ posted: "30.00", held: "0.00", available: "30.00" });
    expect((await c.audit())[0]).toMatchObject({ action: "chama.withdrawal.expire", target: w.id, after: { status: "expired" } });
    // Nothing left to expire, and an expired request stays expired.
    expect(await n.t.node.chamaExpiry.runOnce()).toBe(0);
    expectProblem(await c.step(w.id, "approve", p.a2), 409, "INVALID_TRANSITION");
    await verifyIsClean(n.t);
  });

  test("an approved request past its lifetime cannot be continued, and expires", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00", rules: { requestLifetimeMs: MINUTE } });
    const w = await c.requested(p.m1, "10.00");
    expect(expectOk(await c.step(w.id, "approve", p.a1)).status).toBe("approved");
    n.clock.advance(MINUTE + 1_000);
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "continue", p.m1), 409, "INVALID_TRANSITION");
    await n.t.node.chamaExpiry.runOnce();
    expect((await c.withdrawal(w.id)).status).toBe("expired");
    expect(await c.balance()).toEqual({ posted: "30.00", held: "0.00", available: "30.00" });
  });

  test("a request still inside its lifetime is neither refused nor expired", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00", rules: { requestLifetimeMs: 10 * MINUTE } });
    const w = await c.requested(p.m1, "10.00");
    n.clock.advance(9 * MINUTE);
    await n.t.node.chamaExpiry.runOnce();
    expect((await c.withdrawal(w.id)).status).toBe("pending_approval");
    expect(expectOk(await c.step(w.id, "approve", p.a1)).status).toBe("approved");
  });

  test("at exactly expiresAt a request can no longer be approved; one millisecond before, it can", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00", rules: { requestLifetimeMs: MINUTE } });
    const t0 = n.clock.freeze();
    try {
      const early = await c.requested(p.m1, "10.00");
      const late = await c.requested(p.m1, "10.00");
      expect(Date.parse(early.expiresAt)).toBe(t0 + MINUTE);
      n.clock.advance(MINUTE - 1);
      expect(expectOk(await c.step(early.id, "approve", p.a1)).status).toBe("approved");
      n.clock.advance(1);
      await expectRefusedAndUnchanged(c, () => c.step(late.id, "approve", p.a1), 409, "INVALID_TRANSITION");
      await expectRefusedAndUnchanged(c, () => c.step(early.id, "continue", p.m1), 409, "INVALID_TRANSITION");
      await n.t.node.chamaExpiry.runOnce();
      expect((await c.withdrawal(early.id)).status).toBe("expired");
      expect((await c.withdrawal(late.id)).status).toBe("expired");
      expect(await c.balance()).toEqual({ posted: "30.00", held: "0.00", available: "30.00" });
    } finally {
      n.clock.thaw();
    }
  });

  test("a processing payout is never expired", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00", rules: { requestLifetimeMs: MINUTE } });
    const w = await c.processing(p.m1, "10.00");
    n.clock.advance(MINUTE + 1_000);
    await n.t.node.chamaExpiry.runOnce();
    expect((await c.withdrawal(w.id)).status).toBe("processing");
    expect(expectOk(await c.step(w.id, "complete", undefined)).status).toBe("completed");
    expect(await c.balance()).toEqual({ posted: "20.00", held: "0.00", available: "20.00" });
  });
});

describe("manual review", () => {
  test("an admin parks a request; approvals are cleared; admins then approve it", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "30.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "10.00");
    expect(expectOk(await c.step(w.id, "approve", p.a1)).approvals).toEqual([p.a1]);
    const parked = expectOk(await c.step(w.id, "park", p.a2, { note: "looks odd" }));
    expect(parked).toMatchObject({ status: "manual_review", approvals: [] });
    expect(await c.balance()).toEqual({ posted: "30.00", held: "10.00", available: "20.00" });
    expectProblem(await c.step(w.id, "continue", p.m1), 409, "INVALID_TRANSITION");
    expect(expectOk(await c.step(w.id, "approve", p.a1))).toMatchObject({ status: "manual_review", approvals: [p.a1] });
    expect(expectOk(await c.step(w.id, "approve", p.a3))).toMatchObject({ status: "approved" });
    expect(expectOk(await c.step(w.id, "continue", p.m1)).status).toBe("processing");
  });

  test("a parked request can be rejected, releasing its hold; a member cannot park", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "30.00" });
    const w = await c.requested(p.m1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "park", p.m2), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "park", p.m1), 403, "FORBIDDEN");
    expect(expectOk(await c.step(w.id, "park", p.a1)).status).toBe("manual_review");
    expect(expectOk(await c.step(w.id, "reject", p.a2)).status).toBe("rejected");
    expect(await c.balance()).toEqual({ posted: "30.00", held: "0.00", available: "30.00" });
  });
});

describe("idempotent replays", () => {
  test("the same key and body replays the first answer and holds once", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    const key = crypto.randomUUID();
    const first = await c.request(p.m1, "10.00", { key });
    expect(first.status).toBe(201);
    const answers = await Promise.all(Array.from({ length: 4 }, () => c.request(p.m1, "10.00", { key })));
    for (const a of answers) expect({ status: a.status, body: a.body }).toEqual({ status: first.status, body: first.body });
    expect(await c.balance()).toEqual({ posted: "30.00", held: "10.00", available: "20.00" });
    expect(await c.withdrawals()).toHaveLength(1);
  });

  test("the same key with a different body is 422 IDEMPOTENCY_CONFLICT and changes nothing", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    const key = crypto.randomUUID();
    expect((await c.request(p.m1, "10.00", { key })).status).toBe(201);
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "11.00", { key }), 422, "IDEMPOTENCY_CONFLICT");
    await expectRefusedAndUnchanged(
      c,
      () => c.call("POST", "/withdrawals", { amount: "10.00", destination: { ...BANK, account: "GB82 WEST 1234 5698 7654 32" } }, p.m1, { key }),
      422,
      "IDEMPOTENCY_CONFLICT",
    );
  });

  test("a replayed approval answers the first answer; a replayed refusal stays a refusal", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "30.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "10.00");
    const key = crypto.randomUUID();
    const first = await c.step(w.id, "approve", p.a2, { note: "ok" }, { key });
    expect(first.body).toMatchObject({ status: "pending_approval", approvals: [p.a2] });
    const again = await c.step(w.id, "approve", p.a2, { note: "ok" }, { key });
    expect({ status: again.status, body: again.body }).toEqual({ status: first.status, body: first.body });
    expect((await c.withdrawal(w.id)).approvals).toEqual([p.a2]);
    expectProblem(await c.step(w.id, "approve", p.a2, { note: "different" }, { key }), 422, "IDEMPOTENCY_CONFLICT");

    const refusedKey = crypto.randomUUID();
    const refused = await c.step(w.id, "approve", p.m1, {}, { key: refusedKey });
    expectProblem(refused, 403, "FORBIDDEN");
    const refusedAgain = await c.step(w.id, "approve", p.m1, {}, { key: refusedKey });
    expect({ status: refusedAgain.status, body: refusedAgain.body }).toEqual({ status: refused.status, body: refused.body });
  });

  test("keys are per caller: two members using the same key make two requests", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "30.00" });
    const key = crypto.randomUUID();
    const [x, y] = await Promise.all([c.request(p.m1, "10.00", { key }), c.request(p.m2, "10.00", { key })]);
    expect([x!.status, y!.status]).toEqual([201, 201]);
    expect(x!.body.id).not.toBe(y!.body.id);
    expect([x!.body.memberId, y!.body.memberId]).toEqual([p.m1, p.m2]);
    expect(await c.balance()).toEqual({ posted: "30.00", held: "20.00", available: "10.00" });
  });

  test("a deposit sent 5 times at once with one key is posted once", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    const key = crypto.randomUUID();
    const answers = await Promise.all(Array.from({ length: 5 }, () => c.call("POST", "/deposits", { memberId: p.m1, amount: "7.00" }, undefined, { key })));
    expect(answers[0]!.status).toBe(201);
    for (const a of answers) expect({ status: a.status, body: a.body }).toEqual({ status: answers[0]!.status, body: answers[0]!.body });
    expect(await c.balance()).toEqual({ posted: "7.00", held: "0.00", available: "7.00" });
    expect((await c.member(p.m1)).contributed).toBe("7.00");
    expect(await c.journals("chama_deposit")).toBe(1);
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.m1, amount: "8.00" }, undefined, { key }), 422, "IDEMPOTENCY_CONFLICT");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.a1, amount: "7.00" }, undefined, { key }), 422, "IDEMPOTENCY_CONFLICT");
  });

  test("a POST without an Idempotency-Key is refused and changes nothing", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "1.00", { key: null }), 400, "IDEMPOTENCY_KEY_REQUIRED");
  });
});

describe("hostile withdrawal input is a 400 and changes nothing", () => {
  test("bad amounts", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    const bad: unknown[] = ["10.001", "1.000", "-1", "-0.01", "0", "0.00", "ten", "", "1e3", "+1", "01", " 1", "1.", ".5", "0x10", "1,000",
      "Infinity", "NaN", 5, 0.1, null, { value: "1" }, ["1"], "99999999999999999999999999999999", "1".repeat(101)];
    for (const amount of bad) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/withdrawals", { amount, destination: BANK }, p.m1), 400, "VALIDATION_FAILED");
    }
  });

  test("unknown fields, a spoofed requester and bad destinations", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    const bodies: unknown[] = [
      { amount: "1.00", destination: BANK, memberId: p.a1 },
      { amount: "1.00", destination: BANK, status: "approved" },
      { amount: "1.00", destination: BANK, approvals: [p.a1, p.a2] },
      { amount: "1.00", destination: { ...BANK, swift: "X" } },
      { amount: "1.00", destination: { type: "cash", account: "1" } },
      { amount: "1.00", destination: { type: "bank" } },
      { amount: "1.00", destination: { type: "crypto", network: "ethereum" } },
      { amount: "1.00" },
      { destination: BANK },
      {},
      [],
      null,
    ];
    for (const body of bodies) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/withdrawals", body, p.m1), 400, "VALIDATION_FAILED");
    }
  });

  test("unknown fields on review and step bodies", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    const w = await c.requested(p.m1, "5.00");
    const cases: [string, string, unknown][] = [
      ["approve", p.a1, { note: "ok", reviewerId: p.a2 }],
      ["approve", p.a1, { decision: "reject" }],
      ["approve", p.a1, { note: 5 }],
      ["approve", p.a1, { note: "x".repeat(10_000) }],
      ["reject", p.a1, { reason: "no", status: "approved" }],
      ["park", p.a1, { approvals: [] }],
      ["continue", p.m1, { by: p.a1 }],
      ["cancel", p.m1, { reason: 5 }],
    ];
    for (const [step, who, body] of cases) {
      await expectRefusedAndUnchanged(c, () => c.step(w.id, step, who, body), 400, "VALIDATION_FAILED");
    }
  });

  test("ids that are not UUIDs in the path", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "30.00" });
    const w = await c.requested(p.m1, "5.00");
    for (const bad of ["not-a-uuid", "1", `${w.id}x`, w.id.slice(0, -1), encodeURIComponent("' OR 1=1 --"), "%00"]) {
      await expectRefusedAndUnchanged(c, () => c.step(bad, "approve", p.a1), 400, "VALIDATION_FAILED");
      expectProblem(await n.t.api("GET", `/v1/chamas/${bad}`, undefined, { as: user(p.a1) }), 400, "VALIDATION_FAILED");
      expectProblem(await n.t.api("POST", `/v1/chamas/${bad}/withdrawals`, { amount: "1.00", destination: BANK }, { as: user(p.m1) }), 400, "VALIDATION_FAILED");
    }
    expect((await c.withdrawal(w.id)).status).toBe("pending_approval");
  });

  test("rule changes out of range are 400 and keep the rules", async () => {
    const p = people("a1", "a2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], fund: "30.00" });
    const bad: unknown[] = [
      {},
      { approvalsRequired: 0 },
      { approvalsRequired: -1 },
      { approvalsRequired: 1.5 },
      { approvalsRequired: "1" },
      { rejectionsToReject: 0 },
      { maxPerWithdrawal: "0.00" },
      { maxPerWithdrawal: "-1.00" },
      { maxPerWithdrawal: "1.001" },
      { maxPerDay: 50 },
      { maxPerDay: "fifty" },
      { maxWithdrawalsPerWindow: 0 },
      { windowMs: 1 },
      { windowMs: 1e20 },
      { requestLifetimeMs: 59_999 },
      { requestLifetimeMs: -60_000 },
      { requestLifetimeMs: 91 * 86_400_000 },
      { approvalsRequired: 1, unknownRule: true },
    ];
    for (const rules of bad) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/rules", rules, p.a1), 400, "VALIDATION_FAILED");
    }
  });

  test("approvalsRequired above the number of admins is 409 NOT_ENOUGH_ADMINS", async () => {
    const p = people("a1", "a2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], fund: "30.00" });
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/rules", { approvalsRequired: 3 }, p.a1), 409, "NOT_ENOUGH_ADMINS");
  });
});
