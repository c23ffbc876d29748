import type { Db, Queryable } from "../../lib/db";

/**
 * Reading `events` (the outbox's and the ledger movements that carry theirs) behind a cursor of
 * `event_cursors` (src/db/migrations/021_one_write_path.sql): in (transaction, seq) order, and only
 * what transactions older than every running one wrote, so nothing can ever appear behind the
 * cursor. The JetStream relay and the webhook fan-out each keep one; run these inside the
 * transaction that also moves it.
 */
export type CursorName = "relay" | "webhooks";

/** An event as read behind a cursor: `seq` and `xid` as text (they pass back to `moveCursor` unchanged). */
export interface CursorEvent {
  seq: string;
  xid: string;
  id: string;
  aggregate_id: string;
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

/** The next `limit` events past the cursor, in order. */
export async function eventsAfter(tx: Queryable, name: CursorName, limit: number): Promise<CursorEvent[]> {
  const [cursor] = await tx`select xid::text as xid, seq::text as seq from event_cursors where name = ${name}`;
  // (events.seq, not the text alias: "10" sorts before "9")
  return (await tx`select seq::text, xid::text, id, aggregate_id, type, payload, created_at from events
    where (xid, seq) > (${cursor!.xid}::xid8, ${cursor!.seq}::bigint) and xid < pg_snapshot_xmin(pg_current_snapshot())
    order by events.xid, events.seq limit ${limit}`) as unknown as CursorEvent[];
}

/** Past `last`: everything up to it is done. */
export async function moveCursor(tx: Queryable, name: CursorName, last: CursorEvent): Promise<void> {
  await tx`update event_cursors set xid = ${last.xid}::xid8, seq = ${last.seq}::bigint, updated_at = now() where name = ${name}`;
}

/** Events committed and not yet past the cursor (or still invisible to it), and the oldest one's age. */
export async function backlog(db: Db, name: CursorName): Promise<{ events: number; oldestMs: number | null }> {
  const [row] = await db`select count(*)::int as n, extract(epoch from now() - min(e.created_at)) * 1000 as age
    from events e, event_cursors c where c.name = ${name} and (e.xid, e.seq) > (c.xid, c.seq)`;
  return { events: row!.n as number, oldestMs: row!.age === null ? null : Math.max(0, Number(row!.age)) };
}
