import type { Sql } from "postgres";

/**
 * The conventional pattern the actor design is measured against: a balance row per account and,
 * per payment, one SERIALIZABLE transaction that locks the row (SELECT ... FOR UPDATE), checks the
 * balance, updates it and inserts a ledger row, retried on serialization failure or deadlock.
 * The ledger row carries the payment's idempotency key under a unique index, as Coffer's does.
 * The tables are made by the bench (createConventionalTables); the payments run in the load
 * generator's process (generator.ts), with a pool of its own as a typical service would size it.
 */
const RETRYABLE = new Set(["40001", "40P01"]);
/** A payment that still cannot commit after this many attempts counts as an error (bounded, not forever). */
const MAX_ATTEMPTS = 200;

export async function createConventionalTables(sql: Sql, accounts: number, balance_minor: bigint): Promise<number[]> {
  await sql`drop table if exists bench_ledger`;
  await sql`drop table if exists bench_accounts`;
  await sql`create table bench_accounts (id int primary key, balance numeric(78,0) not null)`;
  await sql`create table bench_ledger (
    id bigserial primary key,
    account_id int not null references bench_accounts (id),
    idempotency_key text not null unique,
    amount numeric(78,0) not null,
    created_at timestamptz not null default now())`;
  await sql`insert into bench_accounts (id, balance)
            select g, ${balance_minor.toString()}::numeric from generate_series(1, ${accounts}::int) g`;
  await sql`analyze bench_accounts`;
  return Array.from({ length: accounts }, (_, i) => i + 1);
}

/** One payment; resolves true once committed, throws (counted as an error) when it cannot be. */
export function conventionalPayer(sql: Sql, counters: { retries: number }) {
  return async function pay(accountId: number, key: string, amount_minor: bigint): Promise<boolean> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      try {
        return await sql.begin("isolation level serializable", async (tx) => {
          const [row] = await tx`select balance from bench_accounts where id = ${accountId} for update`;
          if (!row) throw new Error(`account ${accountId} not found`);
          if (BigInt(row.balance as string) < amount_minor) throw new Error("insufficient funds");
          await tx`update bench_accounts set balance = balance - ${amount_minor.toString()}::numeric where id = ${accountId}`;
          await tx`insert into bench_ledger (account_id, idempotency_key, amount) values (${accountId}, ${key}, ${(-amount_minor).toString()}::numeric)`;
          return true;
        });
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (!code || !RETRYABLE.has(code)) throw error;
        counters.retries++;
      }
    }
    throw new Error(`gave up after ${MAX_ATTEMPTS} serialization failures or deadlocks`);
  };
}

/** Median time of one durable single-row commit, one after another: the floor under any acknowledged write. */
export async function bareCommit_ms(sql: Sql, samples: number): Promise<number> {
  await sql`create table if not exists bench_commit_probe (id bigserial primary key, at timestamptz not null default now())`;
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await sql`insert into bench_commit_probe default values`;
    times.push(performance.now() - t0);
  }
  await sql`drop table bench_commit_probe`;
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}
