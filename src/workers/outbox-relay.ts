import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Db } from "../../lib/db";
import { Pump } from "./pump";

/**
 * Publishes committed domain events (the outbox) to JetStream, on `<prefix>.events.<type>.<aggregateId>`
 * (e.g. `coffer.events.wallet.paid.<walletId>`), stream `<PREFIX>_EVENTS`. Each message carries
 * `Nats-Msg-Id` = the event id, so publishing an event twice (a crash between publish and mark)
 * stores it once. One relay publishes at a time across all nodes (a Postgres advisory lock), in
 * outbox order. A wallet commits one batch after another, so its events arrive in the order they
 * were committed; events of different wallets may interleave differently from their seqs (a
 * transaction that took lower seqs can commit later), which no consumer may rely on.
 */
const BATCH = 500;
const RELAY_LOCK_ID = 72_060_002;
const DUPLICATE_WINDOW_NS = 10 * 60 * 1_000_000_000;

interface Row {
  seq: string;
  id: string;
  aggregate_id: string;
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

export class OutboxRelay {
  private readonly pump: Pump;
  private js: JetStreamClient | undefined;

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    pollMs = 500,
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
    return this.pump.until(async () => (await this.db`select count(*)::int as n from outbox where published_at is null`)[0]!.n === 0, timeoutMs);
  }

  /** One pass: publish up to a batch, in order; true when a full batch went out (there may be more). */
  private async pass(): Promise<boolean> {
    const js = this.js;
    if (!js) return false; // not started yet
    const published = await this.db.begin(async (tx) => {
      const [lock] = await tx`select pg_try_advisory_xact_lock(${RELAY_LOCK_ID}) as mine`;
      if (!lock!.mine) return 0; // another node is relaying right now
      // (outbox.seq, not the text alias: "10" sorts before "9")
      const rows = (await tx`select seq::text, id, aggregate_id, type, payload, created_at from outbox
        where published_at is null order by outbox.seq limit ${BATCH}`) as unknown as Row[];
      const done: string[] = [];
      for (const row of rows) {
        // One at a time, in order: a failure stops the pass, and later events wait their turn.
        await js.publish(`${this.prefix}.events.${row.type}.${row.aggregate_id}`, JSON.stringify(event(row)), { msgID: row.id });
        done.push(row.id);
      }
      if (done.length) await tx`update outbox set published_at = now() where id in ${tx(done)}`;
      return done.length;
    });
    return published === BATCH;
  }
}

function event(row: Row) {
  return { id: row.id, seq: Number(row.seq), type: row.type, aggregateId: row.aggregate_id, createdAt: row.created_at.toISOString(), data: row.payload };
}
