import { testKeys } from "../support/auth";
import type { Work } from "./generator";
import { inParallel } from "./measure";
import { type Spawned, spawnReady } from "./runs";

/** What the parts of `bun run bench` share: settings read from the environment, and starting and funding a node. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

export function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  const list = raw.split(",").map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`${name} must be a comma-separated list of positive integers, got ${JSON.stringify(raw)}`);
  return list;
}


/** Every payment is one cent; every wallet gets a million dollars first, so none fails for funds. */
export const PAYMENT = "0.01";
export const FUNDING = "1000000";
export const FUNDING_MINOR = 100_000_000n;
/** The connection pool of Pattern 1 and of the conventional pattern, as a typical service would size it. */
export const CLIENT_POOL = Math.floor(envNumber("BENCH_CLIENT_POOL", 16));
export const P1_LOCK_RETRY_MS = envNumber("BENCH_P1_LOCK_RETRY_MS", 2);
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export async function post(baseUrl: string, path: string, body: unknown, key: string, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(baseUrl + path, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key, authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

/** Send again (same idempotency key) while the answer is 503 (the node says: retry), a bounded number of times. */
async function definite(send: () => Promise<{ status: number; body: any }>, attempts = 50): Promise<{ status: number; body: any }> {
  let answer = await send();
  for (let i = 1; i < attempts && answer.status === 503; i++) {
    await Bun.sleep(100);
    answer = await send();
  }
  return answer;
}

export async function openFundedWallets(baseUrl: string, token: string, count: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  await inParallel(Array.from({ length: count }, (_, i) => i), 16, async (i) => {
    const created = await definite(() => post(baseUrl, "/v1/wallets", { ownerId: `bench-${tag}-${i}`, asset: "USD" }, `open-${tag}-${i}`, token));
    if (created.status !== 201) throw new Error(`wallet create failed: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id as string;
    const credited = await definite(() => post(baseUrl, `/v1/wallets/${id}/credits`, { amount: FUNDING }, `fund-${tag}-${i}`, token));
    if (credited.status !== 201) throw new Error(`credit failed: ${credited.status} ${JSON.stringify(credited.body)}`);
    ids.push(id);
  });
  return ids;
}

/** BENCH_NODE_PROFILE_DIR: the node runs under `bun --cpu-prof` and writes its profile there when it stops (see test/bench/lean/profile-summary.ts). */
export async function startBenchNode(databaseUrl: string, env: Record<string, string> = {}): Promise<Spawned & { baseUrl: string; controlUrl: string }> {
  const profileDir = process.env.BENCH_NODE_PROFILE_DIR;
  const s = await spawnReady("test/bench/node-server.ts", {
    JWT_KEYS_FILE: (await testKeys()).file,
    DB_POOL_MAX: process.env.DB_POOL_MAX ?? "10",
    LOG_LEVEL: "warn",
    ...env,
    DATABASE_URL: databaseUrl,
    NATS_URL: undefined,
  }, undefined, profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []);
  return { ...s, baseUrl: `http://127.0.0.1:${s.ready.port}`, controlUrl: `http://127.0.0.1:${s.ready.control}` };
}

export function payWork(baseUrl: string | string[], wallets: string[], token: string, owners?: number[]): Work {
  return { kind: "http", urls: Array.isArray(baseUrl) ? baseUrl : [baseUrl], paths: wallets.map((w) => `/v1/wallets/${w}/payments`), body: JSON.stringify({ amount: PAYMENT }), token, ...(owners ? { owners } : {}) };
}

export function pattern1Work(dbUrl: string, users: string[], callers: number): Work {
  return { kind: "pattern1", dbUrl, redisUrl: REDIS_URL, pool: Math.min(CLIENT_POOL, callers), users, amount_minor: "1", lockRetryMs: P1_LOCK_RETRY_MS, lockWaitMs: 5_000, lockTtlMs: 5_000 };
}

