import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
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
 */
const BATCH = 500;
const RELAY_LOCK_ID = 72_060_002;
const DUPLICATE_WINDOW_NS = 10 * 60 * 1_000_000_000;


export class OutboxRelay {
  private readonly pump: Pump;
  private js: JetStreamClient | undefined;

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    pollMs = 500,
    /** With several nodes: relays only on the holder of the `outbox-relay` lease (src/workers/ownership.ts). */
    private readonly ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("outbox relay", () => this.pass(), pollMs);
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
    const published = await this.db.begin(async (tx) => {
      const [lock] = await tx`select pg_try_advisory_xact_lock(${RELAY_LOCK_ID}) as mine`;
      if (!lock!.mine) return 0; // another node is relaying right now
      const rows = await eventsAfter(tx, "relay", BATCH);
      let last: CursorEvent | undefined;
      try {
        for (const row of rows) {
          // One at a time, in order: a failure stops the pass, and later events wait their turn.
          await js.publish(`${this.prefix}.events.${row.type}.${row.aggregate_id}`, JSON.stringify(event(row)), { msgID: row.id });
          last = row;
        }
      } catch (error) {
        failed = error;
      }
      // What went out stays out: the cursor moves past it even when a later publish failed.
      if (last) await moveCursor(tx, "relay", last);
      return rows.length;
    });
    if (failed) throw failed;
    return published === BATCH;
  }
}

function event(row: CursorEvent) {
  return { id: row.id, seq: Number(row.seq), type: row.type, aggregateId: row.aggregate_id, createdAt: row.created_at.toISOString(), data: row.payload };
}

