import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OPERATIONS } from "../../src/api/operations";
import { GRAPHQL_ROUTES } from "../../src/graphql/server";
import { PERMISSIONS, type Permission } from "../../lib/principal";
import type { As } from "../support/auth";
import { startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { callRest, ghostOf, operationFixtures, OWNER_A, OWNER_B, type Answer, type Fixture, type Fixtures } from "../support/operations";
import { CHAMA_ROUTES } from "./chama-routes";
import { isPublicRoute, nameOf, PUBLIC_ROUTES, ROUTES, ruleOf, type RouteCase } from "./routes";
import { expectProblem, footprint } from "./support";

/**
 * Who may call which operation, for every wallet-side entry of the operation table (./routes.ts
 * derives who may from the table and the policy): strangers get the not-found answer a missing
 * object gets, owners do what owners may, auditors only read, services only what their permissions
 * name. Every refusal is checked to have written nothing. Fixtures come from
 * test/support/operations.ts, so a new operation is covered here as soon as it has one.
 */
let t: TestNode;
let fixtures: Fixtures;

const ADMIN: As = { sub: "admin-1", role: "admin" };
const USER_A: As = { sub: OWNER_A, role: "user" };
const USER_B: As = { sub: OWNER_B, role: "user" };
const AUDITOR: As = { sub: "auditor-1", role: "auditor" };
const service = (perms: Permission[]): As => ({ sub: "svc-1", role: "service", perms });

beforeAll(async () => {
  t = await startTestNode("ownership");
  fixtures = operationFixtures(t);
});
afterAll(() => t.stop());

async function created(pending: Promise<ApiResponse>): Promise<string> {
  const res = await pending;
  if (res.status !== 201) throw new Error(`arranging failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

const arrange = (route: RouteCase) => fixtures.arrange(route.op.name);
const call = (route: RouteCase, f: Fixture, as: As, input = f.input): Promise<Answer> => callRest(t, route.op, input, { as });

/** The call is refused with this status and code, and the database is exactly as before. */
async function expectRefusedUnchanged(route: RouteCase, f: Fixture, as: As, status: number, code: RouteCase["stranger"]): Promise<Answer> {
  const before = await footprint(t.node.db);
  const res = await call(route, f, as);
  expectProblem(res, status, code);
  expect(await footprint(t.node.db)).toEqual(before);
  return res;
}

const statusOf = (code: RouteCase["stranger"]) => (code === "FORBIDDEN" ? 403 : 404);
const forbidden = (route: RouteCase, f: Fixture, as: As) => expectRefusedUnchanged(route, f, as, 403, "FORBIDDEN");
const succeeds = (res: Answer, route: RouteCase) => expect({ status: res.status, body: res.body }).toMatchObject({ status: route.ok });

describe("the table", () => {
  test("the route table lists exactly the routes the app serves", () => {
    const served = [...new Set(t.node.http.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`))];
    const listed = OPERATIONS.map((op) => `${op.method} ${op.path}`);
    expect(new Set(listed).size).toBe(listed.length);
    const outsideTable = served.filter((route) => !listed.includes(route));
    const publicOnes = outsideTable.filter((route) => isPublicRoute(...(route.split(" ") as [string, string])));
    // GraphQL's endpoint is another transport over the same table (every field runs the operation
    // through `execute` as REST does; test/graphql/ checks it, ownership included).
    expect([...served].sort()).toEqual([...listed, ...publicOnes, ...GRAPHQL_ROUTES].sort());
    for (const route of PUBLIC_ROUTES) expect(publicOnes).toContain(route);
  });

  test("every operation is tried here or in chama-access.test.ts, once", () => {
    const names = [...ROUTES.map((r) => r.op.name), ...CHAMA_ROUTES.map((r) => r.op.name)];
    expect(names.sort()).toEqual(OPERATIONS.map((op) => op.name).sort());
  });

  test("auditors read everything and change nothing: the policy lets them do exactly the GETs", () => {
    const readable = OPERATIONS.filter((op) => ruleOf(op.action).read).map((op) => op.name);
    expect(readable.sort()).toEqual(OPERATIONS.filter((op) => op.method === "GET").map((op) => op.name).sort());
  });
});

describe("an admin", () => {
  for (const route of ROUTES) {
    test(`succeeds on ${nameOf(route)} (so every refusal below is the policy's)`, async () => {
      succeeds(await call(route, await arrange(route), ADMIN), route);
    });
  }
});

describe("user B on user A's objects", () => {
  for (const route of ROUTES) {
    test(`${nameOf(route)} is ${route.stranger}, exactly as for an object that does not exist, and writes nothing`, async () => {
      const f = await arrange(route);
      const res = await expectRefusedUnchanged(route, f, USER_B, statusOf(route.stranger), route.stranger);
      expect(JSON.stringify(res.body)).not.toContain(OWNER_A);
      const missing = await call(route, f, USER_B, ghostOf(f.input));
      expect({ status: missing.status, code: missing.body.code, detail: missing.body.detail }).toEqual({ status: res.status, code: res.body.code, detail: res.body.detail });
    });
  }
});

describe("user A on their own objects", () => {
  for (const route of ROUTES) {
    if (route.owner) {
      test(`may call ${nameOf(route)}`, async () => {
        succeeds(await call(route, await arrange(route), USER_A), route);
      });
    } else {
      test(`may not call ${nameOf(route)}: 403 FORBIDDEN and nothing written`, async () => {
        await forbidden(route, await arrange(route), USER_A);
      });
    }
  }
});

describe("an auditor", () => {
  for (const route of ROUTES) {
    if (route.read) {
      test(`reads ${nameOf(route)}`, async () => {
        expect((await call(route, await arrange(route), AUDITOR)).status).toBe(200);
      });
    } else {
      test(`may not ${nameOf(route)}: 403 FORBIDDEN and nothing written`, async () => {
        await forbidden(route, await arrange(route), AUDITOR);
      });
    }
  }
});

describe("a service", () => {
  for (const route of ROUTES) {
    const needed = route.permission;
    if (needed === null) {
      test(`may not call ${nameOf(route)} even with every permission`, async () => {
        await forbidden(route, await arrange(route), service([...PERMISSIONS]));
      });
      continue;
    }
    test(`without ${needed} (but every other permission) gets 403 on ${nameOf(route)} and writes nothing`, async () => {
      await forbidden(route, await arrange(route), service(PERMISSIONS.filter((p) => p !== needed)));
    });
    test(`with only ${needed} succeeds on ${nameOf(route)} for any owner's wallet`, async () => {
      succeeds(await call(route, await arrange(route), service([needed])), route);
    });
  }
});

describe("both ends of a transfer", () => {
  /** A transfer of 1.00 from a funded wallet of user A to a new wallet of user B, settled. */
  async function aToB() {
    const from = (await fixtures.arrange("wallets.get")).wallet!;
    const to = await created(t.api("POST", "/v1/wallets", { ownerId: OWNER_B, asset: "USD" }));
    const transfer = await created(t.api("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "1.00" }, { as: USER_A }));
    expect(await t.node.saga.idle()).toBe(true);
    return { from, to, transfer };
  }

  test("the receiver reads the transfer; a third user gets 404", async () => {
    const { from, to, transfer } = await aToB();
    const seen = await t.api("GET", `/v1/transfers/${transfer}`, undefined, { as: USER_B });
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ id: transfer, fromWalletId: from, toWalletId: to, amount: "1.00", status: "settled" });
    expectProblem(await t.api("GET", `/v1/transfers/${transfer}`, undefined, { as: { sub: "user-d", role: "user" } }), 404, "TRANSFER_NOT_FOUND");
  });

  test("the receiver may not read the sender's wallet", async () => {
    const { from } = await aToB();
    expectProblem(await t.api("GET", `/v1/wallets/${from}`, undefined, { as: USER_B }), 404, "WALLET_NOT_FOUND");
  });
});

describe("idempotency keys belong to their caller", () => {
  test("users A and B paying from their own wallets with the same key each get their own payment", async () => {
    const key = `shared-${crypto.randomUUID()}`;
    const a = (await fixtures.arrange("wallets.payments.create")).wallet!;
    const b = await created(t.api("POST", "/v1/wallets", { ownerId: OWNER_B, asset: "USD" }));
    await created(t.api("POST", `/v1/wallets/${b}/credits`, { amount: "10.00" }));

    const paidA = await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "2.00" }, { as: USER_A, key });
    const paidB = await t.api("POST", `/v1/wallets/${b}/payments`, { amount: "3.00" }, { as: USER_B, key });
    expect([paidA.status, paidB.status]).toEqual([201, 201]);
    expect(paidA.body.id).not.toBe(paidB.body.id);
    expect([paidA.body.walletId, paidB.body.walletId]).toEqual([a, b]);
    expect((await t.api("GET", `/v1/wallets/${a}`)).body.balance.posted).toBe("8.00"); // 10 − 2 paid
    expect((await t.api("GET", `/v1/wallets/${b}`)).body.balance.posted).toBe("7.00"); // 10 − 3 paid
  });

  test("users A and B opening wallets with the same key each get their own wallet", async () => {
    const key = `shared-${crypto.randomUUID()}`;
    const a = await t.api("POST", "/v1/wallets", { ownerId: OWNER_A, asset: "USD" }, { as: USER_A, key });
    const b = await t.api("POST", "/v1/wallets", { ownerId: OWNER_B, asset: "USD" }, { as: USER_B, key });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.id).not.toBe(b.body.id);
    expect([a.body.ownerId, b.body.ownerId]).toEqual([OWNER_A, OWNER_B]);
  });

  test("user B replaying user A's key on user A's wallet learns nothing and pays nothing", async () => {
    const key = `shared-${crypto.randomUUID()}`;
    const f = await fixtures.arrange("wallets.payments.create");
    expect((await t.api("POST", `/v1/wallets/${f.wallet}/payments`, { amount: "2.00" }, { as: USER_A, key })).status).toBe(201);
    const before = await footprint(t.node.db);
    expectProblem(await t.api("POST", `/v1/wallets/${f.wallet}/payments`, { amount: "2.00" }, { as: USER_B, key }), 404, "WALLET_NOT_FOUND");
    expect(await footprint(t.node.db)).toEqual(before);
  });
});
