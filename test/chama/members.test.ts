import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  BANK,
  Chama,
  expectOk,
  expectProblem,
  expectRefusedAndUnchanged,
  newChama,
  people,
  startChamaNode,
  user,
  verifyIsClean,
  type ChamaNode,
} from "./support";

/**
 * Who belongs to a chama and what they put in: creation, invitations, direct adds, removal, roles,
 * contribution shares, deposits, and strangers who must not even learn that a chama exists.
 */
let n: ChamaNode;
beforeAll(async () => {
  n = await startChamaNode("chamamembers");
});
afterAll(() => n.t.stop());

describe("creating a chama", () => {
  test("a user creates a chama and is its only admin", async () => {
    const p = people("a1");
    const res = await n.t.api("POST", "/v1/chamas", { name: "Savings circle", asset: "USD" }, { as: user(p.a1) });
    const view = expectOk(res, 201);
    expect(view).toMatchObject({
      name: "Savings circle",
      asset: "USD",
      status: "active",
      createdBy: p.a1,
      members: 1,
      balance: { posted: "0.00", held: "0.00", available: "0.00" },
      rules: { approvalsRequired: 1, rejectionsToReject: 1, maxPerWithdrawal: null, maxPerDay: null, maxWithdrawalsPerWindow: null },
    });
    expect(typeof view.rules.windowMs).toBe("number");
    expect(typeof view.rules.requestLifetimeMs).toBe("number");
    const c = new Chama(n.t, view.id, [p.a1], []);
    expect(await c.member(p.a1)).toEqual({ chamaId: view.id, memberId: p.a1, role: "admin", status: "member", contributed: "0.00", withdrawn: "0.00", share: "0.0000" });
    expect(expectOk(await c.call("GET", "", undefined, p.a1))).toEqual(await c.view());
  });

  test("a user may not name someone else as the admin; a platform admin may", async () => {
    const p = people("a1", "a2");
    expectProblem(await n.t.api("POST", "/v1/chamas", { name: "x", asset: "USD", adminId: p.a2 }, { as: user(p.a1) }), 403, "FORBIDDEN");
    expect(expectOk(await n.t.api("POST", "/v1/chamas", { name: "x", asset: "USD", adminId: p.a1 }, { as: user(p.a1) }), 201).createdBy).toBe(p.a1);
    const made = expectOk(await n.t.api("POST", "/v1/chamas", { name: "y", asset: "USD", adminId: p.a2 }), 201);
    expect(made.createdBy).toBe(p.a2);
    expect((await new Chama(n.t, made.id, [p.a2], []).member(p.a2)).role).toBe("admin");
  });

  test("creating with the same key twice makes one chama", async () => {
    const p = people("a1");
    const key = crypto.randomUUID();
    const send = () => n.t.api("POST", "/v1/chamas", { name: "once", asset: "USD" }, { as: user(p.a1), key });
    const [x, y] = await Promise.all([send(), send()]);
    expect(x!.status).toBe(201);
    expect({ status: y!.status, body: y!.body }).toEqual({ status: x!.status, body: x!.body });
    expectProblem(await n.t.api("POST", "/v1/chamas", { name: "twice", asset: "USD" }, { as: user(p.a1), key }), 422, "IDEMPOTENCY_CONFLICT");
  });

  test("malformed creation bodies are 400", async () => {
    const p = people("a1");
    const [before] = await n.t.node.db`select count(*)::int as n from chamas`;
    const bodies: unknown[] = [
      {},
      { name: "x" },
      { name: "x", asset: "XRP" },
      { name: "x", asset: "usd" },
      { name: "", asset: "USD" },
      { name: "x".repeat(10_000), asset: "USD" },
      { name: "a\u0000b", asset: "USD" },
      { name: 5, asset: "USD" },
      { name: "x", asset: "USD", balance: "100.00" },
      { name: "x", asset: "USD", adminId: "" },
      { name: "x", asset: "USD", members: [p.a1] },
    ];
    for (const body of bodies) expectProblem(await n.t.api("POST", "/v1/chamas", body, { as: user(p.a1) }), 400, "VALIDATION_FAILED");
    const [after] = await n.t.node.db`select count(*)::int as n from chamas`;
    expect(after).toEqual(before);
  });
});

describe("strangers", () => {
  test("a user never involved with a chama gets 404 CHAMA_NOT_FOUND for everything on it", async () => {
    const p = people("a1", "a2", "m1", "stranger");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "20.00" });
    const w = await c.requested(p.m1, "5.00");
    const cases: [string, string, unknown][] = [
      ["GET", "", undefined],
      ["GET", "/members", undefined],
      ["GET", `/members/${p.m1}`, undefined],
      ["GET", "/withdrawals", undefined],
      ["GET", `/withdrawals/${w.id}`, undefined],
      ["GET", "/audit", undefined],
      ["POST", "/withdrawals", { amount: "1.00", destination: BANK }],
      ["POST", `/withdrawals/${w.id}/approve`, {}],
      ["POST", `/withdrawals/${w.id}/reject`, {}],
      ["POST", `/withdrawals/${w.id}/cancel`, {}],
      ["POST", `/withdrawals/${w.id}/continue`, {}],
      ["POST", "/rules", { maxPerDay: "1.00" }],
      ["POST", "/invitations", { memberId: p.stranger }],
      ["POST", "/invitations/accept", {}],
      ["POST", "/members", { memberId: p.stranger }],
      ["POST", `/members/${p.m1}/remove`, {}],
      ["POST", `/members/${p.m1}/role`, { role: "admin" }],
      ["POST", "/freeze", {}],
      ["POST", "/close", {}],
    ];
    for (const [method, sub, body] of cases) {
      await expectRefusedAndUnchanged(c, () => c.call(method, sub, body, p.stranger), 404, "CHAMA_NOT_FOUND");
    }
  });

  test("a chama that does not exist is 404 CHAMA_NOT_FOUND, even for a platform admin", async () => {
    const id = crypto.randomUUID();
    expectProblem(await n.t.api("GET", `/v1/chamas/${id}`), 404, "CHAMA_NOT_FOUND");
    expectProblem(await n.t.api("POST", `/v1/chamas/${id}/deposits`, { memberId: "x", amount: "1.00" }), 404, "CHAMA_NOT_FOUND");
    expectProblem(await n.t.api("POST", `/v1/chamas/${id}/withdrawals`, { amount: "1.00", destination: BANK }, { as: user("nobody") }), 404, "CHAMA_NOT_FOUND");
  });
});

describe("invitations", () => {
  test("an admin invites, the invitee accepts and becomes a member with the invited role", async () => {
    const p = people("a1", "a2", "m1", "x", "y");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "20.00" });
    const invited = expectOk(await c.call("POST", "/invitations", { memberId: p.x }, p.a1), 201);
    expect(invited).toMatchObject({ chamaId: c.id, memberId: p.x, role: "member", status: "invited" });
    expect(expectOk(await c.call("POST", "/invitations", { memberId: p.y, role: "admin" }, p.a1), 201)).toMatchObject({ role: "admin", status: "invited" });
    // The count is of members; invitations are not members yet.
    expect((await c.view()).members).toBe(3);

    // Not yet a member: cannot request.
    await expectRefusedAndUnchanged(c, () => c.request(p.x, "1.00"), 403, "NOT_A_MEMBER");

    const accepted = expectOk(await c.call("POST", "/invitations/accept", {}, p.x));
    expect(accepted).toMatchObject({ chamaId: c.id, memberId: p.x, role: "member", status: "member" });
    expect(expectOk(await c.call("POST", "/invitations/accept", {}, p.y))).toMatchObject({ role: "admin", status: "member" });
    expect((await c.view()).members).toBe(5);
    await c.requested(p.x, "1.00");

    // Accepting again: there is no invitation any more.
    expectProblem(await c.call("POST", "/invitations/accept", {}, p.x), 404, "NOT_INVITED");
    const audit = await c.audit();
    expect(audit.filter((e) => e.action === "chama.member.invite").map((e) => e.target).sort()).toEqual([p.x, p.y].sort());
    expect(audit.filter((e) => e.action === "chama.member.accept").map((e) => e.actor).sort()).toEqual([p.x, p.y].sort());
  });

  test("only admins invite; inviting a member or an invitee again is 409 MEMBER_EXISTS", async () => {
    const p = people("a1", "a2", "m1", "x");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/invitations", { memberId: p.x }, p.m1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/invitations", { memberId: p.m1 }, p.a1), 409, "MEMBER_EXISTS");
    expectOk(await c.call("POST", "/invitations", { memberId: p.x }, p.a1), 201);
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/invitations", { memberId: p.x }, p.a2), 409, "MEMBER_EXISTS");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/members", { memberId: p.x }, p.a2), 409, "MEMBER_EXISTS");
  });

  test("a revoked invitation cannot be accepted", async () => {
    const p = people("a1", "a2", "x");
    const c = await newChama(n.t, { admins: [p.a1, p.a2] });
    expectOk(await c.call("POST", "/invitations", { memberId: p.x }, p.a1), 201);
    expect(expectOk(await c.call("POST", `/members/${p.x}/remove`, {}, p.a2))).toMatchObject({ memberId: p.x, status: "revoked" });
    // Revoked, they are a stranger again: the chama is not found for them (test/security/chama-revoked.test.ts).
    expectProblem(await c.call("POST", "/invitations/accept", {}, p.x), 404, "CHAMA_NOT_FOUND");
    expect((await c.view()).members).toBe(2);
  });

  test("malformed invitations are 400", async () => {
    const p = people("a1", "a2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2] });
    const bodies: unknown[] = [
      {},
      { memberId: "" },
      { memberId: "x".repeat(129) },
      { memberId: "a\u0000b" },
      { memberId: "a\nb" },
      { memberId: 5 },
      { memberId: null },
      { memberId: ["x"] },
      { memberId: "x", role: "owner" },
      { memberId: "x", role: "ADMIN" },
      { memberId: "x", status: "member" },
    ];
    for (const body of bodies) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/invitations", body, p.a1), 400, "VALIDATION_FAILED");
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/members", body, p.a1), 400, "VALIDATION_FAILED");
    }
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/invitations/accept", { memberId: p.a1 }, p.a2), 400, "VALIDATION_FAILED");
  });
});

describe("removing members", () => {
  test("a removed member cannot request, and their requests not yet paying out were cancelled", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "100.00" });
    await c.deposit(p.m1, "40.00");
    const pending = await c.requested(p.m1, "10.00");
    const approved = await c.requested(p.m1, "11.00");
    expect(expectOk(await c.step(approved.id, "approve", p.a1)).status).toBe("approved");
    const paying = await c.processing(p.m1, "12.00");
    const other = await c.requested(p.m2, "13.00");
    expect(await c.balance()).toEqual({ posted: "140.00", held: "46.00", available: "94.00" });

    expectOk(await c.call("POST", `/members/${p.m1}/remove`, { reason: "left the group" }, p.a1));
    expect(await c.member(p.m1)).toMatchObject({ chamaId: c.id, memberId: p.m1, status: "former", contributed: "40.00" });

    expect((await c.withdrawal(pending.id)).status).toBe("cancelled");
    expect((await c.withdrawal(approved.id)).status).toBe("cancelled");
    // A payout already in flight is not pulled back, and another member's request is untouched.
    expect((await c.withdrawal(paying.id)).status).toBe("processing");
    expect((await c.withdrawal(other.id)).status).toBe("pending_approval");
    expect(await c.balance()).toEqual({ posted: "140.00", held: "25.00", available: "115.00" });
    expect((await c.view()).members).toBe(3);

    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "1.00"), 403, "NOT_A_MEMBER");
    await expectRefusedAndUnchanged(c, () => c.step(pending.id, "cancel", p.m1), 403, "NOT_A_MEMBER");

    const [latest] = await c.audit();
    expect(latest).toMatchObject({ action: "chama.member.remove", actor: p.a1, target: p.m1, note: "left the group" });

    // The payout in flight still completes and is recorded against the former member.
    expect(expectOk(await c.step(paying.id, "complete", undefined)).status).toBe("completed");
    expect(await c.member(p.m1)).toMatchObject({ status: "former", contributed: "40.00", withdrawn: "12.00" });
    expect(await c.balance()).toEqual({ posted: "128.00", held: "13.00", available: "115.00" });
    await verifyIsClean(n.t);
  });

  test("removing a member whose requests get cancelled still answers the member view", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "20.00" });
    await c.deposit(p.m1, "3.00");
    await c.requested(p.m1, "5.00");
    const removed = expectOk(await c.call("POST", `/members/${p.m1}/remove`, {}, p.a1));
    expect(removed).toMatchObject({ chamaId: c.id, memberId: p.m1, status: "former", contributed: "3.00" });
  });

  test("a member may leave on their own; a member may not remove someone else", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2] });
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.m2}/remove`, {}, p.m1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.a1}/remove`, {}, p.m1), 403, "FORBIDDEN");
    expect(expectOk(await c.call("POST", `/members/${p.m1}/remove`, {}, p.m1))).toMatchObject({ memberId: p.m1, status: "former" });
    expect((await c.view()).members).toBe(3);
  });

  test("the chama keeps enough admins: removing or demoting one too many is 409 NOT_ENOUGH_ADMINS", async () => {
    const p = people("a1", "a2", "a3");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], rules: { approvalsRequired: 2 } });
    expectOk(await c.call("POST", `/members/${p.a3}/remove`, {}, p.a1));
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.a2}/remove`, {}, p.a1), 409, "NOT_ENOUGH_ADMINS");
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.a1}/remove`, {}, p.a1), 409, "NOT_ENOUGH_ADMINS");
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.a2}/role`, { role: "member" }, p.a1), 409, "NOT_ENOUGH_ADMINS");
  });

  test("removing someone who is neither member nor invited is 404 MEMBER_NOT_FOUND and changes nothing", async () => {
    const p = people("a1", "a2", "ghost");
    const c = await newChama(n.t, { admins: [p.a1, p.a2] });
    const before = await c.audit();
    expectProblem(await c.call("POST", `/members/${p.ghost}/remove`, {}, p.a1), 404, "MEMBER_NOT_FOUND");
    expect(await c.audit()).toEqual(before);
  });

  test("a former member added back gets their contributions back", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    await c.deposit(p.m1, "7.00");
    expectOk(await c.call("POST", `/members/${p.m1}/remove`, {}, p.a1));
    expect(expectOk(await c.call("POST", "/members", { memberId: p.m1 }, p.a1), 201)).toMatchObject({ status: "member", contributed: "7.00" });
    await c.requested(p.m1, "1.00");
  });
});

describe("roles", () => {
  test("an admin promotes a member, who may then review; a non-admin may not change roles", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "20.00" });
    const w = await c.requested(p.m2, "5.00");
    expectProblem(await c.step(w.id, "approve", p.m1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.m1}/role`, { role: "admin" }, p.m1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.m2}/role`, { role: "admin" }, p.m1), 403, "FORBIDDEN");
    expect(expectOk(await c.call("POST", `/members/${p.m1}/role`, { role: "admin" }, p.a1))).toMatchObject({ memberId: p.m1, role: "admin" });
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.m1}/role`, { role: "admin" }, p.a1), 409, "INVALID_TRANSITION");
    expect(expectOk(await c.step(w.id, "approve", p.m1))).toMatchObject({ status: "approved", approvals: [p.m1] });
    const [latest] = (await c.audit()).filter((e) => e.action === "chama.member.role");
    expect(latest).toMatchObject({ actor: p.a1, target: p.m1, before: { role: "member" }, after: { role: "admin" } });
  });

  test("a demoted admin's undecided vote stops counting", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "20.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "5.00");
    expect(expectOk(await c.step(w.id, "approve", p.a3)).approvals).toEqual([p.a3]);
    expectOk(await c.call("POST", `/members/${p.a3}/role`, { role: "member" }, p.a1));
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "pending_approval", approvals: [] });
    expect(expectOk(await c.step(w.id, "approve", p.a2))).toMatchObject({ status: "pending_approval", approvals: [p.a2] });
    expect(expectOk(await c.step(w.id, "approve", p.a1))).toMatchObject({ status: "approved" });
  });

  test("a removed admin's undecided vote stops counting", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "20.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "5.00");
    expect(expectOk(await c.step(w.id, "approve", p.a3)).approvals).toEqual([p.a3]);
    expectOk(await c.call("POST", `/members/${p.a3}/remove`, {}, p.a1));
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "pending_approval", approvals: [] });
    expect(expectOk(await c.step(w.id, "approve", p.a2))).toMatchObject({ status: "pending_approval", approvals: [p.a2] });
  });

  test("bad roles and bad member ids in the path are 400", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    for (const body of [{}, { role: "owner" }, { role: null }, { role: "admin", memberId: p.a2 }]) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.m1}/role`, body, p.a1), 400, "VALIDATION_FAILED");
    }
    for (const bad of ["x".repeat(129), "%00", "a%0Ab"]) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${bad}/role`, { role: "admin" }, p.a1), 400, "VALIDATION_FAILED");
      await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${bad}/remove`, {}, p.a1), 400, "VALIDATION_FAILED");
    }
  });
});

describe("deposits and contribution shares", () => {
  test("each deposit is attributed to its member and shares are their part of all contributions", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2] });
    const first = await c.deposit(p.m1, "30.00");
    expect(first).toMatchObject({ chamaId: c.id, memberId: p.m1, asset: "USD", amount: "30.00", contributed: "30.00", balance: { available: "30.00" } });
    expect(typeof first.id).toBe("string");
    expect(typeof first.createdAt).toBe("string");
    const second = await c.deposit(p.m1, "15.00");
    expect(second).toMatchObject({ contributed: "45.00", balance: { available: "45.00" } });
    await c.deposit(p.m2, "15.00");

    expect(await c.member(p.m1)).toMatchObject({ contributed: "45.00", share: "0.7500", withdrawn: "0.00" });
    expect(await c.member(p.m2)).toMatchObject({ contributed: "15.00", share: "0.2500" });
    expect(await c.member(p.a1)).toMatchObject({ contributed: "0.00", share: "0.0000" });
    const list = expectOk(await c.call("GET", "/members", undefined, p.m2));
    const byId = Object.fromEntries(list.items.map((m: any) => [m.memberId, m]));
    expect(Object.keys(byId).sort()).toEqual([p.a1, p.a2, p.m1, p.m2].sort());
    expect(byId[p.m1].share).toBe("0.7500");
    expect(byId[p.m2].share).toBe("0.2500");
    expect(await c.balance()).toEqual({ posted: "60.00", held: "0.00", available: "60.00" });
    expect(await c.journals("chama_deposit")).toBe(3);

    // Thirds round to four places and never pass 1 in total.
    await c.deposit(p.a1, "30.00");
    const shares = await Promise.all([p.m1, p.m2, p.a1].map(async (m) => (await c.member(m)).share));
    expect(shares[0]).toBe("0.5000");
    expect(shares[1]).toMatch(/^0\.166[67]$/);
    expect(shares[2]).toBe("0.3333");
    await verifyIsClean(n.t);
  });

  test("a user cannot deposit, not even a member for themself; a service with credits:write can", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1] });
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.m1, amount: "5.00" }, p.m1), 403, "FORBIDDEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.a1, amount: "5.00" }, p.a1), 403, "FORBIDDEN");
    const noPerm = { sub: "svc-no-perm", role: "service" as const, perms: ["payments:write" as const] };
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.m1, amount: "5.00" }, noPerm), 403, "FORBIDDEN");
    const svc = { sub: "svc-credits", role: "service" as const, perms: ["credits:write" as const] };
    expect(expectOk(await c.call("POST", "/deposits", { memberId: p.m1, amount: "5.00" }, svc), 201).contributed).toBe("5.00");
  });

  test("a deposit for someone who is not a member is 404 MEMBER_NOT_FOUND; bad amounts are 400", async () => {
    const p = people("a1", "a2", "ghost");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], fund: "1.00" });
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.ghost, amount: "5.00" }), 404, "MEMBER_NOT_FOUND");
    for (const amount of ["0", "0.00", "-1.00", "1.001", "1e3", 5, null, "99999999999999999999999999999999"]) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.a1, amount }), 400, "VALIDATION_FAILED");
    }
    for (const body of [{ amount: "1.00" }, { memberId: p.a1 }, { memberId: p.a1, amount: "1.00", extra: 1 }, { memberId: "", amount: "1.00" }]) {
      await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", body), 400, "VALIDATION_FAILED");
    }
  });
});

describe("chama status", () => {
  test("a frozen chama refuses deposits and requests but still reviews; unfreeze restores it", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "20.00" });
    const w = await c.requested(p.m1, "5.00");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/freeze", {}, p.m1), 403, "FORBIDDEN");
    expect(expectOk(await c.call("POST", "/freeze", {}, p.a1)).status).toBe("frozen");
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "1.00"), 409, "CHAMA_FROZEN");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.m1, amount: "1.00" }), 409, "CHAMA_FROZEN");
    expect(expectOk(await c.step(w.id, "approve", p.a1)).status).toBe("approved");
    await expectRefusedAndUnchanged(c, () => c.step(w.id, "continue", p.m1), 409, "CHAMA_FROZEN");
    expect(expectOk(await c.call("POST", "/unfreeze", {}, p.a2)).status).toBe("active");
    expect(expectOk(await c.step(w.id, "continue", p.m1)).status).toBe("processing");
  });

  test("a chama holding money cannot be closed; an empty one can, and then refuses everything", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "5.00" });
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/close", {}, p.a1), 409, "CHAMA_NOT_EMPTY");
    const w = await c.processing(p.m1, "5.00");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/close", {}, p.a1), 409, "CHAMA_NOT_EMPTY");
    expectOk(await c.step(w.id, "complete", undefined));
    expect(expectOk(await c.call("POST", "/close", {}, p.a1)).status).toBe("closed");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/deposits", { memberId: p.m1, amount: "1.00" }), 409, "CHAMA_CLOSED");
    await expectRefusedAndUnchanged(c, () => c.request(p.m1, "1.00"), 409, "CHAMA_CLOSED");
    await expectRefusedAndUnchanged(c, () => c.call("POST", "/members", { memberId: "late" }, p.a1), 409, "CHAMA_CLOSED");
  });
});
