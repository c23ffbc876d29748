import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Node } from "../../src/node";
import { tokenFor } from "../support/auth";
import { fundedWallet, startTestNode, type Api, type TestNode } from "../support/node";
import { serveOn } from "../support/split-brain";

/**
 * Rate limits are shared state: two nodes on one database enforce one limit together. Each suite
 * uses its own callers, so their buckets do not mix.
 */
const LIMITS = {
  RATE_LIMITS: "on",
  RATE_MONEY_PER_MINUTE: "5",
  RATE_AUTH_FAILURES_PER_15_MINUTES: "3",
  RATE_IP_PER_SECOND: "1000",
} as const;

let a: TestNode;
let b: { node: Node; api: Api; stop(): Promise<void> };

beforeAll(async () => {
  a = await startTestNode("ratelimits", LIMITS);
  b = await serveOn("ratelimits-b", a.db.url, LIMITS);
});
afterAll(async () => {
  await b.stop();
  await a.stop();
});

describe("the payment tier", () => {
  test("holds across two nodes: requests alternating between them get 5 payments a minute in all", async () => {
    const user = { sub: "alternating-user", role: "user" as const };
    const wallet = await fundedWallet(a.api, "USD", "100.00", user.sub);
    const answers = [];
    for (let i = 0; i < 12; i++) {
      const api = i % 2 === 0 ? a.api : b.api;
      answers.push(await api("POST", `/v1/wallets/${wallet}/payments`, { amount: "1.00" }, { as: user }));
    }
    expect(answers.filter((r) => r.status === 201)).toHaveLength(5);
    const refused = answers.filter((r) => r.status === 429);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.body.code).toBe("RATE_LIMITED");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // Refused payments changed nothing; reads are not in the payment tier.
    const read = await b.api("GET", `/v1/wallets/${wallet}`, undefined, { as: user });
    expect(read.status).toBe(200);
    expect(read.body.balance.posted).toBe("95.00");
  });

  test("fired all at once from many connections, still exactly 5 get through", async () => {
    const user = { sub: "burst-user", role: "user" as const };
    const wallet = await fundedWallet(a.api, "USD", "100.00", user.sub);
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a.api : b.api)("POST", `/v1/wallets/${wallet}/payments`, { amount: "1.00" }, { as: user })),
    );
    expect(answers.filter((r) => r.status === 201)).toHaveLength(5);
    expect(answers.filter((r) => r.status === 429)).toHaveLength(25);
  });
});

test("an address that keeps failing authentication is locked out, even with a good token after", async () => {
  // This suite's requests all come from 127.0.0.1; the lock-out is per address, so it runs last.
  for (let i = 0; i < 3; i++) {
    expect((await a.api("GET", "/v1/api-keys", undefined, { token: "not.a.token" })).status).toBe(401);
  }
  const locked = await b.api("GET", "/v1/api-keys", undefined, { token: await tokenFor({ sub: "admin-2", role: "admin" }) });
  expect(locked.status).toBe(429);
  expect(locked.body.code).toBe("RATE_LIMITED");
  expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);
  expect((await a.api("GET", "/health", undefined, { token: null })).status).toBe(200);
});

test("an API key's own per-minute limit applies on top of the tiers", async () => {
  // Runs on a fresh pair of buckets: a new node on a new database (the address above is locked out).
  const t = await startTestNode("ratelimits-key", { ...LIMITS, RATE_MONEY_PER_MINUTE: "100" });
  try {
    const created = await t.api("POST", "/v1/api-keys", { name: "k", subject: "limited-svc", permissions: ["wallets:read"], rateLimitPerMinute: 3 });
    expect(created.status).toBe(201);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await t.api("GET", "/v1/api-keys/" + created.body.id, undefined, { token: null, headers: { "x-api-key": created.body.key } })).status);
    // wallets:read may not read API keys (403) but every attempt still counts against the key.
    expect(statuses).toEqual([403, 403, 403, 429, 429]);
  } finally {
    await t.stop();
  }
});
