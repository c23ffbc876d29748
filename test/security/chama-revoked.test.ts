import { afterAll, beforeAll, expect, test } from "bun:test";
import { expectOk, newChama, people, type Chama } from "../chama/support";
import { startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { expectProblem, footprint } from "./support";

/**
 * Who may read a chama: its members, current and former (and platform readers). An invitation is
 * not membership: someone only invited, or whose invitation was taken back, gets exactly what a
 * stranger gets (src/api/chama-queries.ts, ChamaService.chamaFor), so a revoked invitee learns
 * nothing more about the group, its people or its money than anyone else.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("chama-revoked");
});
afterAll(() => t.stop());

/** Every read of a chama, the audit log included, naming its member and its withdrawal. */
function reads(memberId: string, withdrawalId: string): string[] {
  return ["", "/members", `/members/${memberId}`, "/withdrawals", `/withdrawals/${withdrawalId}`, "/audit"];
}

/** A funded chama with an admin pair, a member with a withdrawal waiting, and the given extra people. */
async function arrange() {
  const p = people("a1", "a2", "m", "invitee", "former", "stranger");
  const c = await newChama(t, { admins: [p.a1, p.a2], members: [p.m, p.former], fund: "50.00" });
  const w = await c.requested(p.m, "1.00");
  expect(expectOk(await c.call("POST", `/members/${p.former}/remove`, {}, p.a1))).toMatchObject({ memberId: p.former, status: "former" });
  expectOk(await c.call("POST", "/invitations", { memberId: p.invitee }, p.a1), 201);
  return { p, c, w };
}

/** `who` gets exactly the stranger's answer, a 404 CHAMA_NOT_FOUND with nothing about the chama in it. */
async function expectSameAsStranger(c: Chama, method: "GET" | "POST", sub: string, who: string, stranger: string, body?: unknown): Promise<ApiResponse> {
  const before = await footprint(t.node.db);
  const theirs = await c.call(method, sub, body, who);
  const strangers = await c.call(method, sub, body, stranger);
  expectProblem(theirs, 404, "CHAMA_NOT_FOUND");
  expect({ sub, status: theirs.status, body: theirs.body }).toEqual({ sub, status: strangers.status, body: strangers.body });
  expect(await footprint(t.node.db)).toEqual(before);
  return theirs;
}

test("someone whose invitation was revoked reads nothing of the chama: every read is the stranger's 404", async () => {
  const { p, c, w } = await arrange();
  expect(expectOk(await c.call("POST", `/members/${p.invitee}/remove`, {}, p.a2))).toMatchObject({ memberId: p.invitee, status: "revoked" });
  for (const sub of reads(p.m, w.id)) {
    const res = await expectSameAsStranger(c, "GET", sub, p.invitee, p.stranger);
    const { instance: _path, ...told } = res.body;
    for (const secret of [p.a1, p.m, p.former, w.id, "50.00"]) expect(JSON.stringify(told)).not.toContain(secret);
  }
});

test("someone whose invitation was revoked acts like a stranger too: accepting or asking for money is the stranger's 404", async () => {
  const { p, c } = await arrange();
  expectOk(await c.call("POST", `/members/${p.invitee}/remove`, {}, p.a2));
  await expectSameAsStranger(c, "POST", "/invitations/accept", p.invitee, p.stranger, {});
  await expectSameAsStranger(c, "POST", "/withdrawals", p.invitee, p.stranger, { amount: "1.00", destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } });
  expect((await c.view()).members).toBe(3);
});

test("someone only invited reads nothing until they accept, and then reads as a member", async () => {
  const { p, c, w } = await arrange();
  for (const sub of reads(p.m, w.id)) await expectSameAsStranger(c, "GET", sub, p.invitee, p.stranger);
  expect(expectOk(await c.call("POST", "/invitations/accept", {}, p.invitee))).toMatchObject({ memberId: p.invitee, status: "member" });
  for (const sub of ["", "/members", "/withdrawals", `/withdrawals/${w.id}`]) expect({ sub, status: (await c.call("GET", sub, undefined, p.invitee)).status }).toEqual({ sub, status: 200 });
});

test("a former member still reads what they were part of; the audit log stays for admins", async () => {
  const { p, c, w } = await arrange();
  const chama = expectOk(await c.call("GET", "", undefined, p.former));
  expect(chama).toMatchObject({ id: c.id, balance: { posted: "50.00" } });
  const members = expectOk(await c.call("GET", "/members", undefined, p.former)).items;
  expect(members.find((m: { memberId: string }) => m.memberId === p.former)).toMatchObject({ status: "former" });
  expect(expectOk(await c.call("GET", `/withdrawals/${w.id}`, undefined, p.former))).toMatchObject({ id: w.id, memberId: p.m });
  expect(expectOk(await c.call("GET", "/withdrawals", undefined, p.former)).items.map((i: { id: string }) => i.id)).toEqual([w.id]);
  expectProblem(await c.call("GET", "/audit", undefined, p.former), 403, "FORBIDDEN");
});

test("a former member invited again, or invited and revoked again, is still a former member and still reads", async () => {
  const { p, c } = await arrange();
  expect(expectOk(await c.call("POST", "/invitations", { memberId: p.former }, p.a1), 201)).toMatchObject({ memberId: p.former, status: "invited" });
  expect((await c.call("GET", "", undefined, p.former)).status).toBe(200);
  expect(expectOk(await c.call("POST", `/members/${p.former}/remove`, {}, p.a2))).toMatchObject({ memberId: p.former, status: "former" });
  expect((await c.call("GET", "/members", undefined, p.former)).status).toBe(200);
});

test("platform readers still read any chama", async () => {
  const { c } = await arrange();
  expect((await c.call("GET", "/members", undefined, { sub: "auditor-r", role: "auditor" })).status).toBe(200);
  expect((await c.call("GET", "/withdrawals", undefined, { sub: "svc-r", role: "service", perms: ["chamas:read"] })).status).toBe(200);
  expect((await c.call("GET", "/audit")).status).toBe(200);
});
