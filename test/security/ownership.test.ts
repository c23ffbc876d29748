import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PERMISSIONS, type Permission } from "../../lib/principal";
import type { As } from "../support/auth";
import { startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { CHAMA_ROUTES, chamaRouteName } from "./chama-routes";
import { nameOf, OWNER_A, OWNER_B, OWNER_C, pathOf, PUBLIC_ROUTES, ROUTES, type Fixture, type RouteCase, type State } from "./routes";
import { expectProblem, footprint } from "./support";

/**
 * Who may call which route, generated from the route table (./routes.ts): strangers get the
 * not-found answer a missing object gets, owners do what owners may, auditors only read, services
 * only what their permissions name. Every refusal is checked to have written nothing.
 */
let t: TestNode;
/** A third user's wallet: the receiver of the fixture's transfers (so user B is a stranger to them). */
let peer: string;

const USER_A: As = { sub: OWNER_A, role: "user" };
const USER_B: As = { sub: OWNER_B, role: "user" };
const AUDITOR: As = { sub: "auditor-1", role: "auditor" };
const service = (perms: Permission[]): As => ({ sub: "svc-1", role: "service", perms });

beforeAll(async () => {
  t = await startTestNode("ownership");
  peer = await created(t.api("POST", "/v1/wallets", { ownerId: OWNER_C, asset: "USD" }));
});
afterAll(() => t.stop());

async function created(pending: Promise<ApiResponse>): Promise<string> {
  const res = await pending;
  if (res.status !== 201) throw new Error(`arranging failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** User A's objects in `state`, arranged by an admin; the transfer has settled when this returns. */
async function arrange(state: State): Promise<Fixture> {
  if (state === "apiKey") {
    return { peer, apiKey: await created(t.api("POST", "/v1/api-keys", { name: "fixture key", subject: "svc-fixture", permissions: ["wallets:read"] })) };
  }
  const wallet = await created(t.api("POST", "/v1/wallets", { ownerId: OWNER_A, asset: "USD" }));
  if (state === "empty") return { wallet, peer };
  await created(t.api("POST", `/v1/wallets/${wallet}/credits`, { amount: "10.00" }));
  const withdrawal = await created(t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "12345678" } }));
  const transfer = await created(t.api("POST", "/v1/transfers", { fromWalletId: wallet, toWalletId: peer, amount: "1.00" }));
  expect(await t.node.saga.idle()).toBe(true);
  if (state === "frozen") expect((await t.api("POST", `/v1/wallets/${wallet}/freeze`)).status).toBe(200);
  return { wallet, withdrawal, transfer, peer };
}

/** Ids nobody has: what a stranger sees must look exactly like this. */
function ghost(): Fixture {
  return { wallet: crypto.randomUUID(), withdrawal: crypto.randomUUID(), transfer: crypto.randomUUID(), apiKey: crypto.randomUUID(), peer };
}

function call(route: RouteCase, f: Fixture, as: As): Promise<ApiResponse> {
  return t.api(route.method, pathOf(route, f), route.body?.(f), { as });
}

/** The call is refused with this status and code, and the database is exactly as before. */
async function expectRefusedUnchanged(route: RouteCase, f: Fixture, as: As, status: number, code: RouteCase["stranger"]): Promise<ApiResponse> {
  const before = await footprint(t.node.db);
  const res = await call(route, f, as);
  expectProblem(res, status, code);
  expect(await footprint(t.node.db)).toEqual(before);
  return res;
}

const statusOf = (code: RouteCase["stranger"]) => (code === "FORBIDDEN" ? 403 : 404);
const forbidden = (route: RouteCase, f: Fixture, as: As) => expectRefusedUnchanged(route, f, as, 403, "FORBIDDEN");

test("the route table lists exactly the routes the app serves", () => {
  const served = t.node.http.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`);
  const listed = [...ROUTES.map(nameOf), ...CHAMA_ROUTES.map(chamaRouteName), ...PUBLIC_ROUTES.map((r) => `${r.method} ${r.pattern}`)];
  expect([...new Set(served)].sort()).toEqual(listed.sort());
});

describe("an admin", () => {
  for (const route of ROUTES) {
    test(`succeeds on ${nameOf(route)} with a ${route.state} wallet (so every refusal below is the policy's)`, async () => {
      const res = await call(route, await arrange(route.state), { sub: "admin-1", role: "admin" });
      expect({ status: res.status, body: res.body }).toMatchObject({ status: route.ok });
    });
  }
});

describe("user B on user A's objects", () => {
  for (const route of ROUTES) {
    test(`${nameOf(route)} is ${route.stranger}, exactly as for an object that does not exist, and writes nothing`, async () => {
      const res = await expectRefusedUnchanged(route, await arrange(route.state), USER_B, statusOf(route.stranger), route.stranger);
      expect(JSON.stringify(res.body)).not.toContain(OWNER_A);
      const missing = await call(route, ghost(), USER_B);
      expect({ status: missing.status, code: missing.body.code, detail: missing.body.detail }).toEqual({ status: res.status, code: res.body.code, detail: res.body.detail });
    });
  }
});

describe("user A on their own objects", () => {
  for (const route of ROUTES) {
    if (route.owner) {
      test(`may call ${nameOf(route)}`, async () => {
        const res = await call(route, await arrange(route.state), USER_A);
        expect({ status: res.status, body: res.body }).toMatchObject({ status: route.ok });
      });
    } else {
      test(`may not call ${nameOf(route)}: 403 FORBIDDEN and nothing written`, async () => {
        await forbidden(route, await arrange(route.state), USER_A);
      });
    }
  }
});

describe("an auditor", () => {
  for (const route of ROUTES) {
    if (route.method === "GET") {
      test(`reads ${nameOf(route)}`, async () => {
        expect((await call(route, await arrange(route.state), AUDITOR)).status).toBe(200);
      });
    } else {
      test(`may not ${nameOf(route)}: 403 FORBIDDEN and nothing written`, async () => {
        await forbidden(route, await arrange(route.state), AUDITOR);
      });
    }
  }
});

describe("a service", () => {
  for (const route of ROUTES) {
    const needed = route.permission;
    if (needed === null) {
      test(`may not call ${nameOf(route)} even with every permission`, async () => {
        await forbidden(route, await arrange(route.state), service([...PERMISSIONS]));
      });
      continue;
    }
    test(`without ${needed} (but every other permission) gets 403 on ${nameOf(route)} and writes nothing`, async () => {
      await forbidden(route, await arrange(route.state), service(PERMISSIONS.filter((p) => p !== needed)));
    });
    test(`with only ${needed} succeeds on ${nameOf(route)} for any owner's wallet`, async () => {
      const res = await call(route, await arrange(route.state), service([needed]));
      expect({ status: res.status, body: res.body }).toMatchObject({ status: route.ok });
    });
  }
});

describe("both ends of a transfer", () => {
  /** A transfer of 1.00 from a funded wallet of user A to a new wallet of user B, settled. */
  async function aToB() {
    const from = (await arrange("funded")).wallet!;
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
    const a = (await arrange("funded")).wallet!;
    const b = await created(t.api("POST", "/v1/wallets", { ownerId: OWNER_B, asset: "USD" }));
    await created(t.api("POST", `/v1/wallets/${b}/credits`, { amount: "10.00" }));

    const paidA = await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "2.00" }, { as: USER_A, key });
    const paidB = await t.api("POST", `/v1/wallets/${b}/payments`, { amount: "3.00" }, { as: USER_B, key });
    expect([paidA.status, paidB.status]).toEqual([201, 201]);
    expect(paidA.body.id).not.toBe(paidB.body.id);
    expect([paidA.body.walletId, paidB.body.walletId]).toEqual([a, b]);
    expect((await t.api("GET", `/v1/wallets/${a}`)).body.balance.posted).toBe("7.00"); // 10 − 1 transferred − 2 paid
    expect((await t.api("GET", `/v1/wallets/${b}`)).body.balance.posted).toBe("7.00");
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
    const f = await arrange("funded");
    expect((await t.api("POST", `/v1/wallets/${f.wallet}/payments`, { amount: "2.00" }, { as: USER_A, key })).status).toBe(201);
    const before = await footprint(t.node.db);
    expectProblem(await t.api("POST", `/v1/wallets/${f.wallet}/payments`, { amount: "2.00" }, { as: USER_B, key }), 404, "WALLET_NOT_FOUND");
    expect(await footprint(t.node.db)).toEqual(before);
  });
});
