import type { RedisClient } from "bun";
import type { Sql } from "postgres";

/**
 * The users' own pattern, "Pattern 1: Atomic Transaction with Lock" of the seeds
 * (../shared/seeds/003_…: `redisLockService`, `idempotencyService`, `walletService`), as close to
 * the seed as SQL allows, on the same Postgres and a local Redis, so Coffer is measured against what
 * its users run today. Per debit:
 *
 *  1. validate the amount;
 *  2. idempotency check, "Redis + Database dual storage": GET idem:<key> in Redis, on a miss the
 *     idempotency table;
 *  3. acquire the wallet's lock in Redis: SET wallet:<user> <token> NX PX 5000, retried every
 *     LOCK_RETRY_MS (+ jitter) until LOCK_WAIT_MS (the seed: "retry mechanism with configurable
 *     attempts", TTL 5 s; redlock's own default retry delay is 200 ms, so a short one here favours
 *     the pattern);
 *  4. one SERIALIZABLE transaction: read the active wallet, check the balance, update it "with an
 *     optimistic lock" (where balance = the balance read; 0 rows: "race condition"), insert the
 *     transaction record and the audit log row; retried on serialization failure or deadlock;
 *  5. release the lock by compare-and-delete (Lua), in a finally;
 *  6. store the idempotency result in Redis (24 h) and in the database.
 */
export const P1_TABLES = ["p1_wallets", "p1_transactions", "p1_audit_logs", "p1_idempotency"] as const;

export async function createPattern1Tables(sql: Sql, users: number, balance_minor: bigint): Promise<string[]> {
  for (const t of [...P1_TABLES].reverse()) await sql.unsafe(`drop table if exists ${t}`);
  await sql`create table p1_wallets (
    id uuid primary key,
    user_id text not null unique,
    balance numeric(78,0) not null,
    currency text not null,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now())`;
  await sql`create table p1_transactions (
    id uuid primary key,
    wallet_id uuid not null references p1_wallets (id),
    user_id text not null,
    type text not null,
    amount numeric(78,0) not null,
    balance_before numeric(78,0) not null,
    balance_after numeric(78,0) not null,
    status text not null,
    idempotency_key text not null unique,
    description text,
    created_at timestamptz not null default now())`;
  await sql`create index p1_transactions_wallet on p1_transactions (wallet_id, created_at desc)`;
  await sql`create table p1_audit_logs (
    id uuid primary key,
    user_id text not null,
    action text not null,
    entity_type text not null,
    entity_id uuid not null,
    details jsonb not null,
    created_at timestamptz not null default now())`;
  await sql`create index p1_audit_logs_user on p1_audit_logs (user_id, created_at desc)`;
  await sql`create table p1_idempotency (
    key text primary key,
    result jsonb not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null)`;
  await sql`insert into p1_wallets (id, user_id, balance, currency)
            select gen_random_uuid(), 'p1-user-' || g, ${balance_minor.toString()}::numeric, 'USD' from generate_series(1, ${users}::int) g`;
  await sql`analyze p1_wallets`;
  return Array.from({ length: users }, (_, i) => `p1-user-${i + 1}`);
}

/** The bench's keys in Redis (the seed's `wallet:<user>` and `idem:<key>`, under a prefix of ours so they can be removed after). */
export const REDIS_PREFIX = "coffer-bench:";

/** Remove the bench's keys from Redis (the idempotency results would otherwise stay 24 h). */
export async function removeRedisKeys(url: string): Promise<number> {
  const { RedisClient } = await import("bun");
  const redis = new RedisClient(url);
  let removed = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = (await redis.send("SCAN", [cursor, "MATCH", `${REDIS_PREFIX}*`, "COUNT", "1000"])) as [string, string[]];
      cursor = next;
      if (keys.length) removed += Number(await redis.send("DEL", keys));
    } while (cursor !== "0");
  } finally {
    redis.close();
  }
  return removed;
}

const RETRYABLE = new Set(["40001", "40P01"]);
const TX_ATTEMPTS_MAX = 100;
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export interface Pattern1Counters {
  lockRetries: number;
  txRetries: number;
}

export interface Pattern1Options {
  lockRetryMs: number;
  lockWaitMs: number;
  lockTtlMs: number;
}

/** One debit of the users' pattern; resolves true once the result is stored (what the seed returns after). */
export function pattern1Payer(sql: Sql, redis: RedisClient, o: Pattern1Options, counters: Pattern1Counters) {
  return async function debit(userId: string, key: string, amount_minor: bigint): Promise<boolean> {
    // 1. validate
    if (amount_minor <= 0n) throw new Error("Invalid amount");
    // 2. idempotency, Redis then the database
    const cached = await redis.get(`${REDIS_PREFIX}idem:${key}`);
    if (cached !== null) return true;
    const [stored] = await sql`select result from p1_idempotency where key = ${key}`;
    if (stored) return true;
    // 3. the wallet's lock
    const lockKey = `${REDIS_PREFIX}wallet:${userId}`;
    const token = crypto.randomUUID();
    const deadline = performance.now() + o.lockWaitMs;
    for (;;) {
      const got = await redis.send("SET", [lockKey, token, "NX", "PX", String(o.lockTtlMs)]);
      if (got === "OK") break;
      if (performance.now() > deadline) throw new Error("lock wait timed out");
      counters.lockRetries++;
      await Bun.sleep(o.lockRetryMs + Math.random() * o.lockRetryMs);
    }
    let result: Record<string, string>;
    try {
      // 4. SERIALIZABLE transaction, retried on serialization failure or deadlock
      result = await serializable(sql, counters, async (tx) => {
        const [wallet] = await tx`select id, balance from p1_wallets where user_id = ${userId} and is_active limit 1`;
        if (!wallet) throw new Error("wallet not found");
        const before = BigInt(wallet.balance as string);
        if (before < amount_minor) throw new Error("Insufficient funds");
        const after = before - amount_minor;
        const updated = await tx`update p1_wallets set balance = ${after.toString()}::numeric, updated_at = now()
                                 where id = ${wallet.id} and balance = ${before.toString()}::numeric`;
        if (updated.count === 0) throw new Error("Race condition detected");
        const txId = crypto.randomUUID();
        await tx`insert into p1_transactions (id, wallet_id, user_id, type, amount, balance_before, balance_after, status, idempotency_key, description)
                 values (${txId}, ${wallet.id}, ${userId}, 'DEBIT', ${amount_minor.toString()}::numeric, ${before.toString()}::numeric,
                         ${after.toString()}::numeric, 'COMPLETED', ${key}, 'payment')`;
        await tx`insert into p1_audit_logs (id, user_id, action, entity_type, entity_id, details)
                 values (${crypto.randomUUID()}, ${userId}, 'WALLET_DEBIT', 'transaction', ${txId},
                         ${JSON.stringify({ amount: amount_minor.toString(), balanceBefore: before.toString(), balanceAfter: after.toString() })}::jsonb)`;
        return { transactionId: txId, balance: after.toString() };
      });
    } finally {
      // 5. release: only our own lock
      await redis.send("EVAL", [RELEASE, "1", lockKey, token]);
    }
    // 6. store the result, Redis and the database
    const text = JSON.stringify(result);
    await redis.send("SET", [`${REDIS_PREFIX}idem:${key}`, text, "EX", "86400"]);
    await sql`insert into p1_idempotency (key, result, expires_at) values (${key}, ${text}::jsonb, now() + interval '24 hours')`;
    return true;
  };
}

async function serializable<T>(sql: Sql, counters: Pattern1Counters, fn: (tx: Sql) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await sql.begin("isolation level serializable", (tx) => fn(tx as unknown as Sql))) as T;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (!code || !RETRYABLE.has(code) || attempt >= TX_ATTEMPTS_MAX) throw error;
      counters.txRetries++;
    }
  }
}
