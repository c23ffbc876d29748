import { startNode, type Node, type NodeOptions } from "../../src/node";
import { loadConfig } from "../../src/config";
import { ADMIN, testKeys, tokenFor, type As } from "./auth";
import { createTestDatabase, type TestDatabase } from "./db";

/**
 * A whole Coffer node on its own fresh database, serving real HTTP on a free port.
 * `api` sends JSON and returns status + parsed body; POSTs get a fresh Idempotency-Key unless one is given,
 * and every request carries an admin's token unless told to act as someone else.
 */
export interface TestNode {
  node: Node;
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

export async function startTestNode(label: string, env: Record<string, string> = {}, options: NodeOptions = {}): Promise<TestNode> {
  const db = await createTestDatabase(label);
  // Rate limits are off unless a suite asks for them: the load suites send far more than a real
  // caller may. test/security/rate-limits.test.ts turns them on.
  const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", ...env, DATABASE_URL: db.url });
  const node = await startNode(config, db.url, options);
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });
  const baseUrl = `http://127.0.0.1:${server.port}`;
  return {
    node,
    db,
    baseUrl,
    api: apiFor(baseUrl),
    async stop() {
      await server.stop(true);
      await node.close();
      await db.drop();
    },
  };
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
