import type { TransactionSql } from "postgres";
import type { ActorWrite, AnyEffect } from "./actor-kind";
import { KeysTakenError } from "./store-errors";
import { outboxPayload } from "./wallet-store";

/**
 * The rows every aggregate that commits in its own transaction (chamas, deposits) writes the same
 * way: the batch's idempotency records, and its effects as outbox events.
 */

/** Claims the batch's idempotency keys; throws KeysTakenError (nothing else written) when some were used meanwhile. */
export async function claimKeys(tx: TransactionSql, write: ActorWrite): Promise<void> {
  if (!write.keyed.length) return;
  const keys = write.keyed.map(({ idempotency: i, outcome }) => ({ scope: i.scope, key: i.key, fingerprint: i.fingerprint, status: outcome.status, body: outcome.body }));
  // json (not jsonb) keeps each body's text, so replays are byte-identical.
  const inserted = await tx`insert into idempotency_keys (scope, key, fingerprint, status, body)
    select scope, key, fingerprint, status, body from json_to_recordset(${JSON.stringify(keys)}::text::json)
      as k(scope text, key text, fingerprint text, status int, body json)
    on conflict do nothing returning scope, key`;
  if (inserted.length < keys.length) {
    const done = new Set(inserted.map((r) => `${r.scope}\u0000${r.key}`));
    throw new KeysTakenError(write.keyed.map((k) => k.idempotency).filter((i) => !done.has(`${i.scope}\u0000${i.key}`)));
  }
}

/** Writes `effects` to the outbox; `flags` marks the ones a worker must act on (its column and value). */
export async function writeOutbox<E extends AnyEffect & { at: string }>(
  tx: TransactionSql,
  aggregateId: string,
  effects: E[],
  flags: (e: E) => Record<string, boolean>,
): Promise<void> {
  const events = effects.map((e) => ({
    id: Bun.randomUUIDv7(),
    aggregate_id: aggregateId,
    type: e.type,
    payload: tx.json(JSON.parse(JSON.stringify(outboxPayload(e as never), (_k, v) => (typeof v === "bigint" ? v.toString() : v)))),
    created_at: e.at,
    ...flags(e),
  }));
  if (events.length) await tx`insert into outbox ${tx(events)}`;
}
