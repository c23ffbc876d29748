import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  AUDITOR,
  BANK_ACCOUNT,
  expectOk,
  expectProblem,
  expectRefusedAndUnchanged,
  newChama,
  people,
  startChamaNode,
  type ChamaNode,
} from "./support";

/**
 * Group consent is enforced by who the caller is, and every accepted chama operation leaves one
 * audit record (who, what, when, before/after) that admins can list; refusals leave none.
 */
let n: ChamaNode;
beforeAll(async () => {
  n = await startChamaNode("chamaaudit");
});
afterAll(() => n.t.stop());

describe("refusals by role (issue: a non-admin reviewing or changing rules → refused)", () => {
  test("a member who is not an admin cannot approve or reject, and the audit log does not move", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "50.00" });
    const w = await c.requested(p.m1, "10.00");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.m2, { note: "sure" }), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "reject", p.m2), 403, "FORBIDDEN");
    // The requester is not an admin either: two reasons, one answer.
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "approve", p.m1), 403, "FORBIDDEN");
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "pending_approval", approvals: [], rejections: [] });
    expect(await c.reviews(w.id)).toEqual([]);
  });

  test("a member who is not an admin cannot change the rules, and neither the rules nor the audit log move", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "50.00" });
    const rulesBefore = (await c.view()).rules;
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/rules", { approvalsRequired: 2 }, p.m1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/rules", { maxPerDay: null, maxPerWithdrawal: "1000.00" }, p.m1), 403, "FORBIDDEN");
    expect((await c.view()).rules).toEqual(rulesBefore);
  });

  test("platform admins and auditors are not members: they cannot change rules or review", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "50.00" });
    const w = await c.requested(p.m1, "10.00");
    // A platform admin passes the policy and is refused by the chama (not a member); an auditor
    // may change nothing anywhere and is refused by the policy.
    for (const [who, code] of [[undefined, "NOT_A_MEMBER"], [AUDITOR, "FORBIDDEN"]] as const) {
      const before = await c.audit();
      expectProblem(await c.call("POST", "/rules", { approvalsRequired: 2 }, who), 403, code);
      expectProblem(await c.step(w.id, "approve", who), 403, code);
      expect(await c.audit()).toEqual(before);
    }
    expect((await c.withdrawal(w.id)).status).toBe("pending_approval");
  });
});

describe("the audit log", () => {
  test("every accepted operation writes exactly one record, newest first, with who and before/after", async () => {
    const p = people("a1", "a2", "m1", "x");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    await c.setRules({ approvalsRequired: 2, maxPerDay: "50.00" });
    await c.deposit(p.m1, "40.00");
    expectOk(await c.call("POST", "/invitations", { memberId: p.x }, p.a2), 201);
    expectOk(await c.call("POST", "/invitations/accept", {}, p.x));
    const w = await c.requested(p.m1, "10.00");
    expectOk(await c.step(w.id, "approve", p.a1, { note: "first" }));
    expectOk(await c.step(w.id, "approve", p.a2));
    expectOk(await c.step(w.id, "continue", p.m1));
    expectOk(await c.step(w.id, "complete", undefined));
    const v = await c.requested(p.x, "5.00");
    expectOk(await c.step(v.id, "cancel", p.x, { reason: "typo" }));
    expectOk(await c.call("POST", `/members/${p.x}/role`, { role: "admin" }, p.a1));
    expectOk(await c.call("POST", "/freeze", {}, p.a1));
    expectOk(await c.call("POST", "/unfreeze", {}, p.a2));

    const log = await c.audit();
    const rows = log.map((e) => [e.action, e.actor, e.target ?? null]);
    expect(rows).toEqual(
      [
        ["chama.open", p.a1, c.id],
        ["chama.member.add", p.a1, p.a2],
        ["chama.member.add", p.a1, p.m1],
        ["chama.rules.change", p.a1, null],
        ["chama.deposit", p.m1, p.m1],
        ["chama.member.invite", p.a2, p.x],
        ["chama.member.accept", p.x, p.x],
        ["chama.withdrawal.request", p.m1, w.id],
        ["chama.withdrawal.review", p.a1, w.id],
        ["chama.withdrawal.review", p.a2, w.id],
        ["chama.withdrawal.continue", p.m1, w.id],
        ["chama.withdrawal.complete", expect.any(String), w.id],
        ["chama.withdrawal.request", p.x, v.id],
        ["chama.withdrawal.cancel", p.x, v.id],
        ["chama.member.role", p.a1, p.x],
        ["chama.freeze", p.a1, null],
        ["chama.unfreeze", p.a2, null],
      ].reverse(),
    );

    // Newest first by a strictly falling sequence, and times that do not go backwards.
    for (let i = 1; i < log.length; i++) {
      expect(Number(log[i - 1].seq)).toBeGreaterThan(Number(log[i].seq));
      expect(Date.parse(log[i - 1].at)).toBeGreaterThanOrEqual(Date.parse(log[i].at));
    }

    const byAction = (action: string) => log.filter((e) => e.action === action);
    expect(byAction("chama.rules.change")[0]).toMatchObject({ before: { approvalsRequired: 1, maxPerDay: null }, after: { approvalsRequired: 2 } });
    expect(byAction("chama.rules.change")[0].after.maxPerDay).not.toBeNull();
    const [second, first] = byAction("chama.withdrawal.review");
    expect(first).toMatchObject({ note: "first", before: { status: "pending_approval" }, after: { status: "pending_approval", approvals: [p.a1] } });
    expect(second).toMatchObject({ before: { status: "pending_approval" }, after: { status: "approved" } });
    expect(byAction("chama.withdrawal.continue")[0]).toMatchObject({ before: { status: "approved" }, after: { status: "processing" } });
    expect(byAction("chama.withdrawal.complete")[0]).toMatchObject({ before: { status: "processing" }, after: { status: "completed" } });
    expect(byAction("chama.withdrawal.cancel")[0]).toMatchObject({ note: "typo", after: { status: "cancelled" } });
    expect(byAction("chama.member.role")[0]).toMatchObject({ before: { role: "member" }, after: { role: "admin" } });
    expect(JSON.stringify(log)).not.toContain(BANK_ACCOUNT);
  });

  test("deposits and payout endings name the platform credential that reported them (via)", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    const processor = { sub: "svc-payouts", role: "service" as const, perms: ["credits:write" as const, "withdrawals:process" as const] };
    expectOk(await c.call("POST", "/deposits", { memberId: p.m1, amount: "20.00" }, processor), 201);
    const w = await c.requested(p.m1, "5.00");
    expectOk(await c.step(w.id, "approve", p.a1));
    expectOk(await c.step(w.id, "continue", p.m1));
    expectOk(await c.step(w.id, "fail", processor, { reason: "bank refused" }));
    const log = await c.audit();
    expect(log.find((r) => r.action === "chama.deposit")).toMatchObject({ actor: p.m1, via: "service#svc-payouts" });
    expect(log.find((r) => r.action === "chama.withdrawal.fail")).toMatchObject({ actor: "system", via: "service#svc-payouts", note: "bank refused" });
    // Members' own actions have no go-between.
    expect(log.find((r) => r.action === "chama.withdrawal.review")!.via).toBeUndefined();
  });

  test("chama admins, platform admins and auditors may read it; a plain member may not; a stranger gets 404", async () => {
    const p = people("a1", "a2", "m1", "stranger");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "5.00" });
    const full = await c.audit();
    for (const who of [p.a1, p.a2, AUDITOR]) expect(expectOk(await c.call("GET", "/audit?limit=200", undefined, who)).items).toEqual(full);
    // A member knows the chama exists, so they are refused (403), not told it is missing.
    const member = await c.call("GET", "/audit", undefined, p.m1);
    expectProblem(member, 403, "FORBIDDEN");
    expect(member.body.items).toBeUndefined();
    expectProblem(await c.call("GET", "/audit", undefined, p.stranger), 404, "CHAMA_NOT_FOUND");
  });

  test("pages follow nextCursor without gaps or repeats", async () => {
    const p = people("a1", "a2", "m1", "m2", "m3");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2, p.m3], fund: "5.00" });
    const full = await c.audit();
    expect(full.length).toBe(6);
    const pages: any[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const res = expectOk(await c.call("GET", `/audit?limit=4${cursor ? `&cursor=${cursor}` : ""}`, undefined, p.a1));
      expect(res.items.length).toBeLessThanOrEqual(4);
      pages.push(...res.items);
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(pages).toEqual(full);
    for (const bad of ["limit=0", "limit=201", "limit=abc", "limit=-1", "cursor=abc", "cursor=-1", `cursor=${"9".repeat(40)}`]) {
      expectProblem(await c.call("GET", `/audit?${bad}`, undefined, p.a1), 400, "VALIDATION_FAILED");
    }
  });

  test("withdrawal listings filter by status and page the same way", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "50.00" });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await c.requested(p.m1, "1.00")).id);
    expectOk(await c.step(ids[0]!, "reject", p.a1));
    expectOk(await c.step(ids[1]!, "approve", p.a1));
    expect((await c.withdrawals("rejected")).map((w) => w.id)).toEqual([ids[0]]);
    expect((await c.withdrawals("approved")).map((w) => w.id)).toEqual([ids[1]]);
    expect((await c.withdrawals("pending_approval")).map((w) => w.id).sort()).toEqual(ids.slice(2).sort());
    const pages: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const res = expectOk(await c.call("GET", `/withdrawals?limit=2${cursor ? `&cursor=${cursor}` : ""}`, undefined, p.m1));
      pages.push(...res.items.map((w: any) => w.id));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(pages.length).toBe(5);
    expect([...pages].sort()).toEqual([...ids].sort());
    expectProblem(await c.call("GET", "/withdrawals?status=done", undefined, p.a1), 400, "VALIDATION_FAILED");
  });
});
