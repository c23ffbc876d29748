import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OPERATIONS, operationNamed } from "../../src/api/operations";
import type { Db } from "../../lib/db";
import { ERROR_STATUS } from "../../lib/errors";
import { PERMISSIONS } from "../../lib/principal";
import { user, type As } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import {
  BANK,
  callRest,
  CHAMA_ADMIN,
  CHAMA_NAME,
  FORMER,
  ghostOf,
  INVITEE,
  MEMBER,
  operationFixtures,
  OTHER_MEMBER,
  SECOND_ADMIN,
  STRANGER,
  type Answer,
  type Fixture,
  type Fixtures,
} from "../support/operations";
import { CHAMA_OVERRIDES, CHAMA_ROUTES, chamaRouteName, WHO, type ChamaRouteCase, type Expected, type Refusal, type Who } from "./chama-routes";
import { expectProblem, footprint } from "./support";

/**
 * Who may call which chama operation: every chama entry of the operation table, tried by every
 * kind of caller (./chama-routes.ts derives what each gets from the policy, plus the chama
 * machine's rules by name) on a fresh chama from test/support/operations.ts. Every refusal is
 * checked to have written nothing (a refusal by the chama machine writes exactly one thing: its
 * idempotency record, which a replay of the same key answers from), and every "not found" a user
 * gets for a real chama is checked to be exactly the answer for a chama that does not exist.
 */
let t: TestNode;
let fixtures: Fixtures;

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
  fixtures = operationFixtures(t);
});
afterAll(() => t.stop());

const arrange = (route: ChamaRouteCase) => fixtures.arrange(route.op.name);

function call(route: ChamaRouteCase, f: Fixture, as: As, key?: string, input = f.input): Promise<Answer> {
  return callRest(t, route.op, input, { as, ...(key ? { key } : {}) });
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

const describeExpected = (e: Expected) => (typeof e === "number" ? `${e}` : `${ERROR_STATUS[e.code]} ${e.code} (${e.by})`);

/**
 * The call is refused with this code. An edge refusal writes nothing; a machine refusal writes only
 * its idempotency record, and replaying the key gives the same answer and writes nothing more.
 */
async function expectRefused(route: ChamaRouteCase, f: Fixture, as: As, refusal: Refusal): Promise<Answer> {
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

describe("the table", () => {
  test("the table has one row per chama route, each with an answer for every caller", () => {
    const names = CHAMA_ROUTES.map(chamaRouteName);
    expect(new Set(names).size).toBe(names.length);
    const served = t.node.http.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/chamas")).map((r) => `${r.method} ${r.path}`);
    expect([...new Set(served)].sort()).toEqual([...names].sort());
    for (const route of CHAMA_ROUTES) expect(Object.keys(route.expect).sort()).toEqual([...WHO].sort());
  });

  test("every override names a chama operation of the table, and a caller", () => {
    const chamaOps = CHAMA_ROUTES.map((r) => r.op.name);
    for (const [name, overrides] of Object.entries(CHAMA_OVERRIDES)) {
      expect({ name, known: chamaOps.includes(name) }).toEqual({ name, known: true });
      for (const who of Object.keys(overrides)) expect(WHO as readonly string[]).toContain(who);
    }
  });

  test("every chama operation acts on a chama, except starting one and listing yours", () => {
    expect(CHAMA_ROUTES.filter((r) => r.op.ownedBy !== "chama").map((r) => r.op.name).sort()).toEqual(["chamas.create", "chamas.list"]);
    expect(OPERATIONS.filter((op) => op.ownedBy === "chama" && !CHAMA_ROUTES.some((r) => r.op === op))).toEqual([]);
  });
});

for (const who of WHO) {
  describe(who, () => {
    for (const route of CHAMA_ROUTES) {
      const expected = route.expect[who];
      test(`${chamaRouteName(route)} → ${describeExpected(expected)}`, async () => {
        const f = await arrange(route);
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
        for (const secret of [CHAMA_ADMIN, MEMBER, CHAMA_NAME]) expect(JSON.stringify(told)).not.toContain(secret);
        const before = await chamaFootprint(t.node.db);
        const missing = await call(route, f, as, undefined, ghostOf(f.input));
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
    // Whom the operation lets in: the fixture's caller (the invitee for accepting, a member or an admin otherwise).
    test(`a platform admin with the subject of the one who may gets ${describeExpected(asAdmin)} on ${chamaRouteName(route)}`, async () => {
      const f = await arrange(route);
      await expectRefused(route, f, { sub: f.as.sub, role: "admin" }, asAdmin);
    });
    test(`a service with ${route.permission} and the subject of the one who may gets ${describeExpected(asService)} on ${chamaRouteName(route)}`, async () => {
      const f = await arrange(route);
      await expectRefused(route, f, { sub: f.as.sub, role: "service", perms: [route.permission] }, asService);
    });
  }
});

describe("inside the chama", () => {
  const route = (name: string): ChamaRouteCase => {
    const found = CHAMA_ROUTES.find((r) => r.op.name === name);
    if (!found) throw new Error(`no chama operation ${name}`);
    return found;
  };
  const withInput = (f: Fixture, more: Record<string, unknown>): Fixture => ({ ...f, input: { ...f.input, ...more } });

  test("an admin never reviews their own request: 403 FORBIDDEN from the machine", async () => {
    const f = await fixtures.arrange("chamas.withdrawals.approve");
    const own = await callRest(t, operationNamed("chamas.withdrawals.create")!, { chamaId: f.chama, amount: "1.00", destination: BANK }, { as: user(CHAMA_ADMIN) });
    expect(own.status).toBe(201);
    for (const decision of ["approve", "reject"]) {
      await expectRefused(route(`chamas.withdrawals.${decision}`), withInput(f, { withdrawalId: own.body.id }), user(CHAMA_ADMIN), { code: "FORBIDDEN", by: "machine" });
    }
    // …and the other admin may.
    const approved = await callRest(t, route("chamas.withdrawals.approve").op, { chamaId: f.chama, withdrawalId: own.body.id }, { as: user(SECOND_ADMIN) });
    expect(approved.body).toMatchObject({ status: "approved", approvals: [SECOND_ADMIN] });
  });

  test("a plain member who did not ask may neither continue nor cancel someone else's withdrawal", async () => {
    await expectRefused(route("chamas.withdrawals.continue"), await fixtures.arrange("chamas.withdrawals.continue"), user(OTHER_MEMBER), { code: "FORBIDDEN", by: "machine" });
    await expectRefused(route("chamas.withdrawals.cancel"), await fixtures.arrange("chamas.withdrawals.cancel"), user(OTHER_MEMBER), { code: "FORBIDDEN", by: "machine" });
  });

  test("a plain member may leave, and then reads what they were part of but acts no more", async () => {
    const f = await fixtures.arrange("chamas.withdrawals.create");
    const left = await t.api("POST", `/v1/chamas/${f.chama}/members/${OTHER_MEMBER}/remove`, {}, { as: user(OTHER_MEMBER) });
    expect({ status: left.status, body: left.body }).toMatchObject({ status: 200, body: { memberId: OTHER_MEMBER, status: "former" } });
    expect((await t.api("GET", `/v1/chamas/${f.chama}`, undefined, { as: user(OTHER_MEMBER) })).status).toBe(200);
    await expectRefused(route("chamas.withdrawals.create"), f, user(OTHER_MEMBER), { code: "NOT_A_MEMBER", by: "machine" });
  });

  test("a user creating a chama without naming an admin is its admin", async () => {
    const res = await t.api("POST", "/v1/chamas", { name: "Harambee", asset: "USD" }, { as: user(STRANGER) });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 201, body: { createdBy: STRANGER, status: "active", members: 1 } });
    const me = await t.api("GET", `/v1/chamas/${res.body.id}/members/${STRANGER}`, undefined, { as: user(STRANGER) });
    expect(me.body).toMatchObject({ memberId: STRANGER, role: "admin", status: "member" });
  });

  test("after all that, the ledger and the chama projections still agree", async () => {
    await verifyIsClean(t);
  });
});
