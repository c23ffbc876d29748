import postgres, { type Sql, type TransactionSql } from "postgres";

export type Db = Sql;

/**
 * One pool per process (and a client of one connection per commit lane, actors/commit-queue.ts).
 * Options are explicit so nothing depends on the driver's defaults.
 */
export function connect(url: string, max = 20, timeouts = { statement_ms: 30_000, lock_ms: 5_000 }, connectTimeoutS = 2): Db {
  return postgres(url, {
    max,
    // A commit stuck behind someone else's lock (an operator's open transaction, a migration) must
    // fail and be retried, not hold its wallet, and the node's commit slots, forever.
    connection: { statement_timeout: timeouts.statement_ms, lock_timeout: timeouts.lock_ms },
    idle_timeout: 30,
    // Setting up a connection to Postgres takes milliseconds. When Postgres ends backends while
    // the pool is reconnecting, some new connections never finish their start-up and only this
    // timeout frees them: at 10 s a node stalled that long (test/chaos/chama-db-failure.test.ts).
    connect_timeout: connectTimeoutS,
    max_lifetime: 60 * 30,
    prepare: true,
    onnotice: () => {},
    // Reconnect quickly after a lost connection (the driver's default grows to 20 s): a wallet
    // command waiting on the pool should fail fast or succeed fast, not hang.
    backoff: (attempt: number) => Math.min(0.02 * 2 ** attempt, 0.5),
    // numeric stays a string: money is turned into bigint by our code, never into a JS number.
    types: {},
  });
}

/** Anything that runs a query: the pool, or one transaction of it. */
export type Queryable = Sql | TransactionSql;
