import type { Db } from "../../lib/db";
import { EVERYTHING, type Ownership } from "./ownership";
import { Pump } from "./pump";

/**
 * Idempotency records are kept for IDEMPOTENCY_TTL_HOURS (at least 24 h) and then deleted, a
 * bounded batch at a time so the sweep never holds long locks: ROWS_PER_PASS rows a pass, at most
 * PASSES_PER_SWEEP passes a sweep (the rest waits for the next one), one sweep at a time, and a
 * failed pass retried with backoff (src/workers/pump.ts).
 */
const ROWS_PER_PASS = 10_000;
const PASSES_PER_SWEEP = 100;

/** Starts sweeping every `everyMs`; returns the function that stops it (waiting for a pass in hand). */
export function startIdempotencyExpiry(db: Db, ttlHours: number, everyMs = 10 * 60_000, ownership: Ownership = EVERYTHING): () => Promise<void> {
  const pass = async (): Promise<boolean> => {
    if (!ownership.leads("idempotency-expiry")) return false; // another node sweeps
    // The transfer saga's own keys (scope "system") are what make its steps exactly-once; they
    // are kept for 30 days, far past any transfer's life, whatever the callers' TTL.
    const deleted = await db`delete from idempotency_keys where ctid in (
      select ctid from idempotency_keys
      where created_at < now() - make_interval(hours => ${ttlHours})
        and (scope <> 'system' or created_at < now() - interval '30 days')
      limit ${ROWS_PER_PASS})`;
    return deleted.count === ROWS_PER_PASS;
  };
  const pump = new Pump("idempotency expiry", pass, everyMs, { passesMax: PASSES_PER_SWEEP });
  return () => pump.stop();
}
