import { startNode, type Node, type NodeOptions } from "../../src/node";
import { loadConfig } from "../../src/config";
import { ADMIN, testKeys, tokenFor, type As } from "./auth";
import { claimNode, POOL_PER_NODE } from "./budget";
import { createTestDatabase, type TestDatabase } from "./db";
import { startStripe, type StripeHarness } from "./stripe";

/**
 * A whole Coffer node on its own fresh database, serving real HTTP on a free port.
 * `api` sends JSON and returns status + parsed body; POSTs get a fresh Idempotency-Key unless one is given,
 * and every request carries an admin's token unless told to act as someone else.
 */
export interface TestNode {
  node: Node;
  /** The Stripe stand-in this node is configured with (none when started with COFFER_TEST_STRIPE=off). */
  stripe?: StripeHarness;
  db: TestDatabase;
  baseUrl: string;
  api: Api;
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  body: any;
  headers: Headers;
}

export interface ApiOptions {
  key?: string | null;
  raw?: string;
  headers?: Record<string, string>;
  /** Act as this identity (default: an admin). */
  as?: As;
  /** Send exactly this bearer token; null sends none. Overrides `as`. */
  token?: string | null;
}

export type Api = (method: string, path: string, body?: unknown, opts?: ApiOptions) => Promise<ApiResponse>;

/**
 * What every test node is configured with before its own `env`: the test process's token key, a
 * pool within the suite's connection budget (test/support/budget.ts), no rate limits (the load
 * suites send far more than a real caller may; test/security/rate-limits.test.ts turns them on), and
 * transaction monitoring run by hand (`node.monitoring.settle()`), not in the background: its
 * alerts are outbox rows, and a suite that compares what a request wrote must not see them arrive
 * on their own (test/monitoring/ turns it on where it matters).
 */
export async function testNodeEnv(env: Record<string, string> = {}): Promise<Record<string, string>> {
  return { JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", DB_POOL_MAX: String(POOL_PER_NODE), MONITORING: "off", ...env };
}

export async function startTestNode(label: string, env: Record<string, string> = {}, options: NodeOptions = {}): Promise<TestNode> {
  const release = claimNode(label);
  let db: TestDatabase | undefined;
  let stripe: StripeHarness | undefined;
  try {
    db = await createTestDatabase(label);
    // Every test node gets its own Stripe stand-in (card deposits are operations like any other),
    // unless the suite asks for none or brings its own settings.
    stripe = env.COFFER_TEST_STRIPE === "off" || env.STRIPE_SECRET_KEY !== undefined ? undefined : await startStripe();
    const config = loadConfig({ ...(await testNodeEnv({ ...stripe?.env, ...env })), DATABASE_URL: db.url });
    const node = await startNode(config, db.url, options);
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });
    const baseUrl = `http://127.0.0.1:${server.port}`;
    stripe?.connect(baseUrl);
    const dropped = db;
    const harness = stripe;
    return {
      node,
      db,
      baseUrl,
      api: apiFor(baseUrl),
      ...(harness ? { stripe: harness } : {}),
      async stop() {
        await server.stop(true);
        await node.close();
        await harness?.stop();
        release();
        await dropped.drop();
      },
    };
  } catch (error) {
    release();
    await stripe?.stop().catch(() => {});
    await db?.drop().catch(() => {});
    throw error;
  }
}

export function apiFor(baseUrl: string): Api {
  return async (method, path, body, opts = {}) => {
    const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
    const token = opts.token === undefined ? await tokenFor(opts.as ?? ADMIN) : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (method === "POST" && opts.key !== null) headers["idempotency-key"] = opts.key ?? crypto.randomUUID();
    const res = await fetch(baseUrl + path, {
      method,
      headers,
      body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // leave as text: the test will see it
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}

/** Create a wallet and optionally fund it; returns its id. */
export async function fundedWallet(api: Api, asset = "USD", amount?: string, ownerId = "owner-1"): Promise<string> {
  const created = await api("POST", "/v1/wallets", { ownerId, asset });
  if (created.status !== 201) throw new Error(`wallet create failed: ${created.status} ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  if (amount) {
    const credit = await api("POST", `/v1/wallets/${id}/credits`, { amount });
    if (credit.status !== 201) throw new Error(`credit failed: ${credit.status} ${JSON.stringify(credit.body)}`);
  }
  return id;
}
