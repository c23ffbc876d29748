import postgres, { type Sql } from "postgres";

/**
 * The conventional pattern the actor design is measured against: a balance row per account and,
 * per payment, one SERIALIZABLE transaction that locks the row (SELECT ... FOR UPDATE), checks the
 * balance, updates it and inserts a ledger row, retried on serialization failure or deadlock.
 * The ledger row carries the payment's idempotency key under a unique index, as Coffer's does.
 */
const RETRYABLE = new Set(["40001", "40P01"]);
/** A payment that still cannot commit after this many attempts counts as an error (bounded, not forever). */
const MAX_ATTEMPTS = 200;

export interface Conventional {
  accountIds: number[];
  /** Attempts that were rolled back and retried (serialization failures and deadlocks). */
  retries: number;
  pay(accountId: number, key: string, amount_minor: bigint): Promise<boolean>;
  close(): Promise<void>;
}

export async function setupConventional(url: string, accounts: number, balance_minor: bigint, poolMax: number): Promise<Conventional> {
  const sql: Sql = postgres(url, { max: poolMax, idle_timeout: 30, connect_timeout: 10, prepare: true, onnotice: () => {}, types: {} });
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

  const state: Conventional = {
    accountIds: Array.from({ length: accounts }, (_, i) => i + 1),
    retries: 0,
    async pay(accountId, key, amount_minor) {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        try {
          return await sql.begin("isolation level serializable", async (tx) => {
            const [row] = await tx`select balance from bench_accounts where id = ${accountId} for update`;
            if (!row || BigInt(row.balance as string) < amount_minor) return false;
            await tx`update bench_accounts set balance = balance - ${amount_minor.toString()}::numeric where id = ${accountId}`;
            await tx`insert into bench_ledger (account_id, idempotency_key, amount) values (${accountId}, ${key}, ${(-amount_minor).toString()}::numeric)`;
            return true;
          });
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (!code || !RETRYABLE.has(code)) throw error;
          state.retries++;
        }
      }
      return false;
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
  return state;
}
