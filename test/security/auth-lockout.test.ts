import { afterEach, expect, test } from "bun:test";
import { ApiKeys } from "../../src/security/api-keys";
import { Authenticator } from "../../src/security/authenticator";
import type { Principal } from "../../lib/principal";
import { RateLimiter } from "../../src/security/rate-limit";
import { appWith } from "../support/app";
import { testKeys, TOKEN_SETTINGS, tokenFor } from "../support/auth";
import { apiFor, startTestNode, type Api, type ApiResponse, type TestNode } from "../support/node";

/**
 * The lock-out of an address that keeps failing authentication holds against attempts sent all at
 * once: each attempt is counted before its credential is verified, so of a burst no more than the
 * tier's limit ever reach a verification (src/http/rate-limit.ts, src/security/authenticator.ts).
 * The lock-out is per address and every request here comes from 127.0.0.1, so each test runs on a
 * node of its own (its own database, so its own buckets).
 */
const LIMIT = 10;
const BURST = 80;
const LIMITS = { RATE_LIMITS: "on", RATE_AUTH_FAILURES_PER_15_MINUTES: String(LIMIT), RATE_IP_PER_SECOND: "1000" } as const;

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function node(label: string): Promise<TestNode> {
  const t = await startTestNode(label, LIMITS);
  stops.push(() => t.stop());
  return t;
}

/** An API-key store that counts how often a presented key is actually checked. */
class CountingApiKeys extends ApiKeys {
  checks = 0;
  override authenticate(presented: string, clientIp: string | undefined) {
    this.checks++;
    return super.authenticate(presented, clientIp);
  }
}

/** The node's HTTP app again, served on its own port, with the key check counted. */
async function countedApp(t: TestNode): Promise<{ api: Api; apiKeys: CountingApiKeys }> {
  const apiKeys = new CountingApiKeys(t.node.db);
  const http = await appWith(t, { apiKeys, limiter: new RateLimiter(t.node.db) }, LIMITS);
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: http.fetch });
  stops.push(async () => void (await server.stop(true)));
  return { api: apiFor(`http://127.0.0.1:${server.port}`), apiKeys };
}

const statuses = (answers: ApiResponse[]) => ({
  unauthenticated: answers.filter((r) => r.status === 401 && r.body.code === "UNAUTHENTICATED").length,
  limited: answers.filter((r) => r.status === 429 && r.body.code === "RATE_LIMITED" && Number(r.headers.get("retry-after")) > 0).length,
});

/** A well-formed API key that no row has (the prefix finds nothing). */
const strangerKey = (i: number) => `cof_${`nokey${i}`.padEnd(12, "0")}_${"A".repeat(32)}`;

test(`${BURST} bad tokens at once from one address: exactly ${LIMIT} are verified (401), the rest are refused (429) unverified`, async () => {
  const t = await node("authlock-tokens");
  const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => t.api("GET", "/v1/api-keys", undefined, { token: `not.a.token${i}` })));
  expect(statuses(answers)).toEqual({ unauthenticated: LIMIT, limited: BURST - LIMIT });

  // The address is locked out for the window, a good token included; liveness still answers.
  const locked = await t.api("GET", "/v1/api-keys", undefined, { token: await tokenFor({ sub: "admin-after-burst", role: "admin" }) });
  expect({ status: locked.status, code: locked.body.code }).toEqual({ status: 429, code: "RATE_LIMITED" });
  expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);
  expect((await t.api("GET", "/health", undefined, { token: null })).status).toBe(200);
});

test(`${BURST} unknown API keys at once from one address: the key check runs no more than ${LIMIT} times`, async () => {
  const t = await node("authlock-keys");
  const created = await t.api("POST", "/v1/api-keys", { name: "svc", subject: "lockout-svc", permissions: ["wallets:read"] });
  expect(created.status).toBe(201);
  const { api, apiKeys } = await countedApp(t);

  const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => api("GET", "/v1/api-keys", undefined, { token: null, headers: { "x-api-key": strangerKey(i) } })));
  expect(apiKeys.checks).toBe(LIMIT);
  expect(statuses(answers)).toEqual({ unauthenticated: LIMIT, limited: BURST - LIMIT });

  // A real key from the locked-out address is refused before it is even looked at.
  const locked = await api("GET", "/v1/wallets/00000000-0000-0000-0000-000000000000", undefined, { token: null, headers: { "x-api-key": created.body.key } });
  expect({ status: locked.status, code: locked.body.code, checks: apiKeys.checks }).toEqual({ status: 429, code: "RATE_LIMITED", checks: LIMIT });
});

test("good credentials give their attempt back: many new tokens in a row do not lock the address out, failures still do", async () => {
  const t = await node("authlock-good");
  // Each token is new (a new subject), so each one is verified and passes the gate.
  for (let i = 0; i < 3 * LIMIT; i++) {
    const res = await t.api("GET", "/v1/api-keys", undefined, { token: await tokenFor({ sub: `admin-good-${i}`, role: "admin" }) });
    expect(res.status).toBe(200);
  }
  const bad = [];
  for (let i = 0; i <= LIMIT; i++) bad.push((await t.api("GET", "/v1/api-keys", undefined, { token: `bad.token.${i}` })).status);
  expect(bad).toEqual([...Array<number>(LIMIT).fill(401), 429]);
});

test("the authenticator verifies nothing past a closed gate, keeps a failed attempt counted and gives a good one back", async () => {
  // The gate is entered before anything is verified: an attempt it refuses is never verified (the
  // counting key store sees nothing).
  const t = await node("authlock-unit");
  const apiKeys = new CountingApiKeys(t.node.db);
  const authenticator = new Authenticator((await testKeys()).ring, TOKEN_SETTINGS, apiKeys);
  const refusal = new Error("closed");
  const outcome = await authenticator.principalFor({ apiKey: strangerKey(1) }, { enter: () => Promise.reject(refusal) }).catch((e: unknown) => e);
  expect({ outcome, checks: apiKeys.checks }).toEqual({ outcome: refusal, checks: 0 });

  // Counted then kept for a failure; counted then given back for a good credential.
  const given: string[] = [];
  const gate = (label: string) => ({ enter: async () => async () => void given.push(label) });
  await expect(authenticator.principalFor({ apiKey: strangerKey(2) }, gate("bad"))).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  const good: Principal = await authenticator.principalFor({ authorization: `Bearer ${await tokenFor({ sub: "unit-admin", role: "admin" })}` }, gate("good"));
  expect({ sub: good.sub, given }).toEqual({ sub: "unit-admin", given: ["good"] });
});
