import { jetstream, JetStreamApiError, jetstreamManager, PubHeaders, type JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { Db } from "../../lib/db";
import { backlog, type CursorEvent, eventsAfter, moveCursor } from "./event-cursor";
import { EVERYTHING, type Ownership } from "./ownership";
import { Pump } from "./pump";

/**
 * Publishes committed domain events (`events`: the outbox's and the ledger movements that carry
 * theirs, src/db/migrations/021_one_write_path.sql) to JetStream, on
 * `<prefix>.events.<type>.<aggregateId>` (e.g. `coffer.events.wallet.paid.<walletId>`), stream
 * `<PREFIX>_EVENTS`. Each message carries `Nats-Msg-Id` = the event id, so publishing an event twice
 * (a crash between publish and moving the cursor) stores it once. One relay publishes at a time
 * across all nodes (a Postgres advisory lock), in (transaction, seq) order behind its cursor
 * (`event_cursors`, 'relay'), reading only what transactions older than every running one wrote: an
 * aggregate commits one batch after another, so its events arrive in the order they were
 * committed; events of different aggregates may interleave differently from their seqs, which no
 * consumer may rely on. Nothing is written per event.
 *
 * A pass's events go out in chunks of up to CHUNK_MAX, not one round trip each: every event of a
 * chunk but the last is published without waiting for anything, the last one as a JetStream request
 * whose ack confirms the whole chunk. That holds because each event carries
 * `Nats-Expected-Last-Msg-Id`: the id of the event before it. The server stores an event only
 * right behind the one before it, so an ack for the last means all of the chunk is stored, in
 * order, and an event that did not land (or anything another publisher put in between) makes the
 * server refuse every one behind it: never a gap, never out of order. A chunk that is not confirmed
 * is not counted: the cursor stays before it and the next pass sends it again (Nats-Msg-Id: what
 * was stored is stored once). While the relay does not know that its own last event is the stream's
 * last message (its first event, after anything unconfirmed, after another node relayed) one event
 * goes alone, unguarded, and its fresh ack says so.
 */
const BATCH = 500;
/** Events in one chunk at most: what one ack confirms (a pass's BATCH goes out in chunks of this many). */
const CHUNK_MAX = 128;
const RELAY_LOCK_ID = 72_060_002;
/**
 * Every commit kicks the relay; a pass starts at most this often for them (one that leaves a full
 * batch behind goes on at once). A pass is a transaction of its own (the advisory lock, the cursor's
 * move, a durable commit): at a pass per commit the relay cost Postgres more per payment than the
 * events did. Events wait at most this long longer.
 */
const KICK_GAP_MS = 50;
const DUPLICATE_WINDOW_NS = 10 * 60 * 1_000_000_000;

export class OutboxRelay {
  private readonly pump: Pump;
  private js: JetStreamClient | undefined;
  /**
   * The id of the event this relay last saw stored fresh (its ack was no duplicate's), which the
   * stream's last message should be; undefined: not known, the next event goes alone.
   */
  private lastId: string | undefined;

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    pollMs = 500,
    /** With several nodes: relays only on the holder of the `outbox-relay` lease (src/workers/ownership.ts). */
    private readonly ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("outbox relay", () => this.pass(), pollMs, { kickGapMs: KICK_GAP_MS });
  }

  get stream(): string {
    return `${this.prefix.toUpperCase().replaceAll("-", "_")}_EVENTS`;
  }

  /** Create the stream if it is missing. */
  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    await jsm.streams.info(this.stream).catch(() =>
      jsm.streams.add({ name: this.stream, subjects: [`${this.prefix}.events.>`], duplicate_window: DUPLICATE_WINDOW_NS }),
    );
    this.js = jetstream(this.nc);
    this.kick();
  }

  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }

  /** Resolves once every event committed so far is published (tests, shutdown). */
  idle(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => (await backlog(this.db, "relay")).events === 0, timeoutMs);
  }

  /** One pass: publish up to a batch, in order; true when a full batch went out (there may be more). */
  private async pass(): Promise<boolean> {
    const js = this.js;
    if (!js) return false; // not started yet
    // Another node relays (the advisory lock below still keeps two holders from interleaving).
    if (!this.ownership.leads("outbox-relay")) return false;
    let failed: unknown;
    let more = false;
    await this.db.begin(async (tx) => {
      const [lock] = await tx`select pg_try_advisory_xact_lock(${RELAY_LOCK_ID}) as mine`;
      if (!lock!.mine) return; // another node is relaying right now
      const rows = await eventsAfter(tx, "relay", BATCH);
      const { sent, error } = await this.publishInOrder(js, rows);
      failed = error;
      // What went out stays out: the cursor moves past it even when a later publish failed.
      if (sent > 0) await moveCursor(tx, "relay", rows[sent - 1]!);
      // A full batch (there may be more), or a pass cut short by a refusal that is no failure (the
      // stream was not where this relay thought: the next pass starts again from an unguarded event).
      more = rows.length === BATCH || (sent < rows.length && !error);
    });
    if (failed) throw failed;
    return more;
  }

  /**
   * Publish `rows` in order: how many of them, from the first, are confirmed stored, and the failure
   * that stopped it (none when it stopped at something that is no failure: a chunk the stream
   * refused because it was not where this relay thought, or one that was sent before).
   */
  private async publishInOrder(js: JetStreamClient, rows: CursorEvent[]): Promise<{ sent: number; error?: unknown }> {
    let sent = 0;
    while (sent < rows.length) {
      const previous = this.lastId;
      this.lastId = undefined; // known again only once an ack says so
      if (previous === undefined) {
        // Alone, expecting nothing: stored fresh, it is the stream's last message (a duplicate's ack says nothing of where the stream is).
        try {
          const ack = await js.publish(this.subjectOf(rows[sent]!), this.bodyOf(rows[sent]!), { msgID: rows[sent]!.id });
          sent++;
          if (!ack.duplicate) this.lastId = rows[sent - 1]!.id;
        } catch (error) {
          return { sent, error };
        }
        continue;
      }
      const chunk = rows.slice(sent, sent + CHUNK_MAX);
      const last = chunk.length - 1;
      try {
        // In order on the one connection; each expects the event before it to be the stream's last message.
        for (let i = 0; i < last; i++) {
          const h = natsHeaders();
          h.set(PubHeaders.MsgIdHdr, chunk[i]!.id);
          h.set(PubHeaders.ExpectedLastMsgIdHdr, i === 0 ? previous : chunk[i - 1]!.id);
          this.nc.publish(this.subjectOf(chunk[i]!), this.bodyOf(chunk[i]!), { headers: h });
        }
        const ack = await js.publish(this.subjectOf(chunk[last]!), this.bodyOf(chunk[last]!), { msgID: chunk[last]!.id, expect: { lastMsgID: last === 0 ? previous : chunk[last - 1]!.id } });
        // A duplicate's ack (sent before, and the expectation not looked at) confirms nothing of the events before it: again, one by one.
        if (ack.duplicate) return { sent };
        sent += chunk.length;
        this.lastId = chunk[last]!.id;
      } catch (error) {
        return { sent, ...(isWrongLastMessage(error) ? {} : { error }) };
      }
    }
    return { sent };
  }

  private subjectOf(row: CursorEvent): string {
    return `${this.prefix}.events.${row.type}.${row.aggregate_id}`;
  }

  private bodyOf(row: CursorEvent): string {
    return JSON.stringify(event(row));
  }
}

/** The stream refused an event because its last message was not the one the event expected. */
function isWrongLastMessage(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === WRONG_LAST_MSG_ID;
}

/** JetStream's error code for "wrong last msg ID" (nats-server JSStreamWrongLastMsgIDErrF; the client names no constant for it). */
const WRONG_LAST_MSG_ID = 10070;

function event(row: CursorEvent) {
  return { id: row.id, seq: Number(row.seq), type: row.type, aggregateId: row.aggregate_id, createdAt: row.created_at.toISOString(), data: row.payload };
}

