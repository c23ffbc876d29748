import { log, reason } from "../../lib/log";
import type { Db } from "../../lib/db";

/**
 * Idempotency records are kept for IDEMPOTENCY_TTL_HOURS (at least 24 h) and then deleted, a
 * bounded batch at a time so the sweep never holds long locks.
 */
export function startIdempotencyExpiry(db: Db, ttlHours: number, everyMs = 10 * 60_000): () => void {
  const sweep = async () => {
    try {
      for (let round = 0; round < 100; round++) {
        // The transfer saga's own keys (scope "system") are what make its steps exactly-once; they
        // are kept for 30 days, far past any transfer's life, whatever the callers' TTL.
        const deleted = await db`delete from idempotency_keys where ctid in (
          select ctid from idempotency_keys
          where created_at < now() - make_interval(hours => ${ttlHours})
            and (scope <> 'system' or created_at < now() - interval '30 days')
          limit 10000)`;
        if (deleted.count < 10000) break;
      }
    } catch (error) {
      log("warn", "idempotency expiry failed; will retry", { error: reason(error) });
    }
  };
  const timer = setInterval(sweep, everyMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
