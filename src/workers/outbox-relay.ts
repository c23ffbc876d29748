import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Db } from "../db/client";
import { log, reason } from "../log";

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
  private running = false;
  private again = false;
  private stopped = false;
  private readonly timer: Timer;
  private js: JetStreamClient | undefined;

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    pollMs = 500,
  ) {
    this.timer = setInterval(() => this.kick(), pollMs);
    this.timer.unref?.();
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
    if (this.stopped || !this.js) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.running) await Bun.sleep(10);
  }

  /** Resolves once every event committed so far is published (tests, shutdown). */
  async idle(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const [row] = await this.db`select count(*)::int as n from outbox where published_at is null`;
      if (row!.n === 0) return true;
      this.kick();
      await Bun.sleep(20);
    }
    return false;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        const published = await this.db.begin(async (tx) => {
          const [lock] = await tx`select pg_try_advisory_xact_lock(${RELAY_LOCK_ID}) as mine`;
          if (!lock!.mine) return 0; // another node is relaying right now
          // (outbox.seq, not the text alias: "10" sorts before "9")
          const rows = (await tx`select seq::text, id, aggregate_id, type, payload, created_at from outbox
            where published_at is null order by outbox.seq limit ${BATCH}`) as unknown as Row[];
          const done: string[] = [];
          for (const row of rows) {
            // One at a time, in order: a failure stops the pass, and later events wait their turn.
            await this.js!.publish(`${this.prefix}.events.${row.type}.${row.aggregate_id}`, JSON.stringify(event(row)), { msgID: row.id });
            done.push(row.id);
          }
          if (done.length) await tx`update outbox set published_at = now() where id in ${tx(done)}`;
          return done.length;
        });
        if (published === BATCH) this.again = true;
      } while (this.again && !this.stopped);
    } catch (error) {
      log("warn", "outbox relay pass failed; will retry", { error: reason(error) });
    } finally {
      this.running = false;
    }
  }
}

function event(row: Row) {
  return { id: row.id, seq: Number(row.seq), type: row.type, aggregateId: row.aggregate_id, createdAt: row.created_at.toISOString(), data: row.payload };
}
