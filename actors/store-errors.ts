import type { Db } from "../lib/db";
import type { Idempotency, Reply } from "./envelope";

/** The other side's write won: this actor's state is stale and must be reloaded. */
export class FencedError extends Error {
  constructor(id: string, version: number) {
    super(`${id} moved past version ${version}`);
  }
}

/**
 * The commit was refused before it was tried (the node's commit queue had no room): nothing was
 * written, so the actor's committed state still holds and its callers may retry with the same keys.
 */
export class CommitRefusedError extends Error {}

/**
 * An aggregate's row read back as absent, yet a second read finds it: the first answer cannot be
 * trusted (seen under chaos, with Postgres ending the pool's connections mid-load, once in a few
 * hundred runs of test/chaos/db-failure.test.ts; the driver's part in it is not understood yet).
 * Treated like a lost connection: 503, the actor is dropped, the caller retries with its key. It
 * must never become "not found": a transfer's credit refused as WALLET_NOT_FOUND voids the transfer.
 */
export class ReadOutOfStepError extends Error {
  readonly code = "READ_OUT_OF_STEP";
}

/**
 * Called when a load found no row for `id`: a second, separate read confirms it (an unknown id is
 * rare outside creation, which is not the hot path). Throws ReadOutOfStepError if the row is there.
 */
export async function confirmAbsent(db: Db, table: "wallets" | "chamas" | "deposits", id: string): Promise<void> {
  const [row] = await db`select exists (select 1 from ${db(table)} where id = ${id}) as present`;
  if (row?.present) throw new ReadOutOfStepError(`${table} row ${id} read back absent, yet it exists`);
}

/** Some idempotency keys were committed by someone else meanwhile; their stored outcomes apply. */
export class KeysTakenError extends Error {
  constructor(readonly taken: Idempotency[]) {
    super(`${taken.length} idempotency keys already used`);
  }
}

/** Stored outcomes for keys someone else committed. */
export async function loadOutcomes(db: Db, keys: Idempotency[]): Promise<Map<string, { fingerprint: string; outcome: Reply }>> {
  const found = new Map<string, { fingerprint: string; outcome: Reply }>();
  if (!keys.length) return found;
  const rows = await db`select k.scope, k.key, k.fingerprint, k.status, k.body from idempotency_keys k
    join unnest(${db.array(keys.map((k) => k.scope))}::text[], ${db.array(keys.map((k) => k.key))}::text[]) as wanted(scope, key)
      on k.scope = wanted.scope and k.key = wanted.key`;
  for (const r of rows) found.set(`${r.scope}\u0000${r.key}`, { fingerprint: r.fingerprint, outcome: { status: r.status, body: r.body } });
  return found;
}
