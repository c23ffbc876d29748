import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Db } from "../../lib/db";
import { ERROR_STATUS } from "../../lib/errors";
import { PERMISSIONS } from "../../lib/principal";
import type { As } from "../support/auth";
import { startTestNode, type ApiResponse, type TestNode } from "../support/node";
import {
  CHAMA_ADMIN,
  CHAMA_ROUTES,
  chamaPathOf,
  chamaRouteName,
  FORMER,
  INVITEE,
  MEMBER,
  OTHER_MEMBER,
  SECOND_ADMIN,
  STRANGER,
  WHO,
  type ChamaFixture,
  type ChamaRouteCase,
  type ChamaState,
  type Refusal,
  type Who,
} from "./chama-routes";
import { expectProblem, footprint } from "./support";

/**
 * Who may call which chama route, generated from the table in ./chama-routes.ts. Every route is
 * tried by every kind of caller on a fresh chama; every refusal is checked to have written nothing
 * (a refusal by the chama machine writes exactly one thing: its idempotency record, which a replay
 * of the same key answers from), and every "not found" a user gets for a real chama is checked to
 * be exactly the answer for a chama that does not exist.
 */
let t: TestNode;

const user = (sub: string): As => ({ sub, role: "user" });
const PLATFORM_ADMIN: As = { sub: "admin-1", role: "admin" };
const AUDITOR: As = { sub: "auditor-1", role: "auditor" };

function identity(who: Who, route: ChamaRouteCase): As {
  switch (who) {
    case "chamaAdmin":
      return user(CHAMA_ADMIN);
    case "member":
      return user(MEMBER);
    case "invitee":
      return user(INVITEE);
    case "former":
      return user(FORMER);
    case "stranger":
      return user(STRANGER);
    case "platformAdmin":
      return PLATFORM_ADMIN;
    case "auditor":
      return AUDITOR;
    case "service":
      return { sub: "svc-1", role: "service", perms: [route.permission] };
    case "serviceWithout":
      return { sub: "svc-1", role: "service", perms: PERMISSIONS.filter((p) => p !== route.permission) };
  }
}

beforeAll(async () => {
  t = await startTestNode("chama-access");
});
afterAll(() => t.stop());

/** Arranging: every step must do what it says, or the test is about something else. */
async function ok(pending: Promise<ApiResponse>, status: 200 | 201 = 201): Promise<any> {
  const res = await pending;
  if (res.status !== status) throw new Error(`arranging failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A fresh chama in `state`, arranged by its members (and a platform admin for the deposit). */
async function arrange(state: ChamaState): Promise<ChamaFixture> {
  if (state === "none") return { chama: crypto.randomUUID() };
  const admin = user(CHAMA_ADMIN);
  const chama = (await ok(t.api("POST", "/v1/chamas", { name: "Umoja", asset: "USD" }, { as: admin }))).id as string;
  const base = `/v1/chamas/${chama}`;
  await ok(t.api("POST", `${base}/members`, { memberId: SECOND_ADMIN, role: "admin" }, { as: admin }));
  for (const memberId of [MEMBER, OTHER_MEMBER, FORMER]) await ok(t.api("POST", `${base}/members`, { memberId }, { as: admin }));
  await ok(t.api("POST", `${base}/members/${FORMER}/remove`, {}, { as: admin }), 200);
  await ok(t.api("POST", `${base}/invitations`, { memberId: INVITEE }, { as: admin }));
  if (state === "empty") return { chama };

  await ok(t.api("POST", `${base}/deposits`, { memberId: MEMBER, amount: "100.00" }));
  const request = async () =>
    (await ok(t.api("POST", `${base}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "12345678" } }, { as: user(MEMBER) }))).id as string;
  const [pending, approved, processing] = [await request(), await request(), await request()];
  for (const id of [approved, processing]) {
    expect((await ok(t.api("POST", `${base}/withdrawals/${id}/approve`, {}, { as: admin }), 200)).status).toBe("approved");
  }
  expect((await ok(t.api("POST", `${base}/withdrawals/${processing}/continue`, {}, { as: user(MEMBER) }), 200)).status).toBe("processing");
  if (state === "frozen") await ok(t.api("POST", `${base}/freeze`, {}, { as: admin }), 200);
  return { chama, pending, approved, processing };
}

/** Ids nobody has: what a stranger sees must look exactly like this. */
const ghost = (): ChamaFixture => ({ chama: crypto.randomUUID(), pending: crypto.randomUUID(), approved: crypto.randomUUID(), processing: crypto.randomUUID() });

function call(route: ChamaRouteCase, f: ChamaFixture, as: As, key?: string): Promise<ApiResponse> {
  return t.api(route.method, chamaPathOf(route, f), route.body?.(f), { as, ...(key ? { key } : {}) });
}

/** The shared footprint (wallets, ledger, outbox, idempotency keys, API keys) and every chama table. */
async function chamaFootprint(db: Db) {
  const [chamas] = await db`select
    (select coalesce(json_agg(json_build_object('id', id, 'status', status, 'posted', posted::text, 'held', held::text, 'version', version,
        'snapshot', md5(snapshot::text), 'updated', updated_at) order by id), '[]'::json) from chamas) as chamas,
    (select coalesce(json_agg(json_build_object('chama', chama_id, 'member', member_id, 'role', role, 'status', status,
        'contributed', contributed::text, 'withdrawn', withdrawn::text, 'updated', updated_at) order by chama_id, member_id), '[]'::json) from chama_members) as members,
    (select coalesce(json_agg(json_build_object('id', id, 'status', status, 'approvals', approvals, 'rejections', rejections,
        'reason', reason, 'updated', updated_at) order by id), '[]'::json) from chama_withdrawals) as withdrawals,
    (select count(*) from chama_reviews)::int as reviews,
    (select count(*) from chama_audit)::int as audit`;
  return { ...(await footprint(db)), ...chamas } as Record<string, unknown>;
}

const describeExpected = (e: ChamaRouteCase["expect"][Who]) => (typeof e === "number" ? `${e}` : `${ERROR_STATUS[e.code]} ${e.code} (${e.by})`);

/**
 * The call is refused with this code. An edge refusal writes nothing; a machine refusal writes only
 * its idempotency record, and replaying the key gives the same answer and writes nothing more.
 */
async function expectRefused(route: ChamaRouteCase, f: ChamaFixture, as: As, refusal: Refusal): Promise<ApiResponse> {
  const key = `refused-${crypto.randomUUID()}`;
  const before = await chamaFootprint(t.node.db);
  const res = await call(route, f, as, key);
  expectProblem(res, ERROR_STATUS[refusal.code], refusal.code);
  const after = await chamaFootprint(t.node.db);
  if (refusal.by === "edge") {
    expect(after).toEqual(before);
    return res;
  }
  expect(after).toEqual({ ...before, idempotency_keys: (before.idempotency_keys as number) + 1 });
  const [stored] = await t.node.db`select status, body from idempotency_keys where key = ${key}`;
  expect({ status: stored?.status, code: stored?.body?.code }).toEqual({ status: res.status, code: refusal.code });
  const again = await call(route, f, as, key);
  expect({ status: again.status, body: again.body }).toEqual({ status: res.status, body: res.body });
  expect(await chamaFootprint(t.node.db)).toEqual(after);
  return res;
}

test("the table has one row per chama route, each with an answer for every caller", () => {
  const names = CHAMA_ROUTES.map(chamaRouteName);
  expect(new Set(names).size).toBe(names.length);
  const served = t.node.http.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/chamas")).map((r) => `${r.method} ${r.path}`);
  expect([...new Set(served)].sort()).toEqual([...names].sort());
  for (const route of CHAMA_ROUTES) expect(Object.keys(route.expect).sort()).toEqual([...WHO].sort());
});

for (const who of WHO) {
  describe(who, () => {
    for (const route of CHAMA_ROUTES) {
      const expected = route.expect[who];
      test(`${chamaRouteName(route)} → ${describeExpected(expected)}`, async () => {
        const f = await arrange(route.state);
        const as = identity(who, route);
        if (typeof expected === "number") {
          const res = await call(route, f, as);
          expect({ status: res.status, body: res.body }).toMatchObject({ status: expected });
          return;
        }
        const res = await expectRefused(route, f, as, expected);
        if (expected.code !== "CHAMA_NOT_FOUND") return;
        // Hidden means hidden: nothing about the chama or its people rides along, and the answer is
        // exactly the one for a chama that does not exist (which writes nothing either).
        const { instance: _echoed, ...told } = res.body; // the instance is the caller's own path
        for (const secret of [CHAMA_ADMIN, MEMBER, "Umoja"]) expect(JSON.stringify(told)).not.toContain(secret);
        const before = await chamaFootprint(t.node.db);
        const missing = await call(route, ghost(), as);
        expect({ status: missing.status, code: missing.body.code, detail: missing.body.detail }).toEqual({
          status: res.status,
          code: res.body.code,
          detail: res.body.detail,
        });
        expect(await chamaFootprint(t.node.db)).toEqual(before);
      });
    }
  });
}

describe("a credential that is not a user's is never a member, whatever its subject", () => {
  // Member actions act as the caller's subject; a platform admin or a service must not become a
  // member (and consent for the group) just because its subject is spelled like one.
  for (const route of CHAMA_ROUTES) {
    const asAdmin = route.expect.platformAdmin;
    const asService = route.expect.service;
    if (typeof asAdmin === "number" || asAdmin.by !== "machine" || typeof asService === "number") continue;
    // Whom the route would let in: the invitee for accepting, a chama admin for everything else.
    const lookalike = route.pattern.endsWith("/accept") ? INVITEE : CHAMA_ADMIN;
    test(`a platform admin whose subject is "${lookalike}" gets ${describeExpected(asAdmin)} on ${chamaRouteName(route)}`, async () => {
      await expectRefused(route, await arrange(route.state), { sub: lookalike, role: "admin" }, asAdmin);
    });
    test(`a service with ${route.permission} whose subject is "${lookalike}" gets ${describeExpected(asService)} on ${chamaRouteName(route)}`, async () => {
      await expectRefused(route, await arrange(route.state), { sub: lookalike, role: "service", perms: [route.permission] }, asService);
    });
  }
});

describe("inside the chama", () => {
  const step = (f: ChamaFixture, withdrawal: string, name: string) => `/v1/chamas/${f.chama}/withdrawals/${withdrawal}/${name}`;
  const route = (pattern: string) => CHAMA_ROUTES.find((r) => r.pattern === pattern)!;

  test("an admin never reviews their own request: 403 FORBIDDEN from the machine", async () => {
    const f = await arrange("funded");
    const own = await ok(t.api("POST", `/v1/chamas/${f.chama}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "12345678" } }, { as: user(CHAMA_ADMIN) }));
    for (const decision of ["approve", "reject"]) {
      const r = route(`/v1/chamas/:id/withdrawals/:withdrawalId/${decision}`);
      await expectRefused({ ...r, withdrawal: "pending" }, { ...f, pending: own.id }, user(CHAMA_ADMIN), { code: "FORBIDDEN", by: "machine" });
    }
    // …and the other admin may.
    expect((await t.api("POST", step(f, own.id, "approve"), {}, { as: user(SECOND_ADMIN) })).body).toMatchObject({ status: "approved", approvals: [SECOND_ADMIN] });
  });

  test("a plain member who did not ask may neither continue nor cancel someone else's withdrawal", async () => {
    const f = await arrange("funded");
    await expectRefused(route("/v1/chamas/:id/withdrawals/:withdrawalId/continue"), f, user(OTHER_MEMBER), { code: "FORBIDDEN", by: "machine" });
    await expectRefused(route("/v1/chamas/:id/withdrawals/:withdrawalId/cancel"), f, user(OTHER_MEMBER), { code: "FORBIDDEN", by: "machine" });
  });

  test("a plain member may leave, and then reads what they were part of but acts no more", async () => {
    const f = await arrange("funded");
    const left = await t.api("POST", `/v1/chamas/${f.chama}/members/${OTHER_MEMBER}/remove`, {}, { as: user(OTHER_MEMBER) });
    expect({ status: left.status, body: left.body }).toMatchObject({ status: 200, body: { memberId: OTHER_MEMBER, status: "former" } });
    expect((await t.api("GET", `/v1/chamas/${f.chama}`, undefined, { as: user(OTHER_MEMBER) })).status).toBe(200);
    await expectRefused(route("/v1/chamas/:id/withdrawals"), f, user(OTHER_MEMBER), { code: "NOT_A_MEMBER", by: "machine" });
  });

  test("a user creating a chama without naming an admin is its admin", async () => {
    const res = await t.api("POST", "/v1/chamas", { name: "Harambee", asset: "USD" }, { as: user(STRANGER) });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 201, body: { createdBy: STRANGER, status: "active", members: 1 } });
    const me = await t.api("GET", `/v1/chamas/${res.body.id}/members/${STRANGER}`, undefined, { as: user(STRANGER) });
    expect(me.body).toMatchObject({ memberId: STRANGER, role: "admin", status: "member" });
  });

  test("after all that, the ledger and the chama projections still agree", async () => {
    const verify = await t.api("GET", "/admin/verify");
    expect({ status: verify.status, body: verify.body }).toMatchObject({ status: 200, body: { ok: true, mismatches: [] } });
  });
});
