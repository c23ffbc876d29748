import type { Db } from "../src/db/client";
import { problem } from "../src/errors";
import { CommitQueue, type CommitQueueLimits } from "./commit-queue";
import type { Envelope, Outcome } from "./envelope";
import { ActorStale, type ActorLimits, type Render, WalletActor } from "./wallet-actor";

export interface HostOptions extends ActorLimits, CommitQueueLimits {
  idleMs: number;
  /** Attempts when an actor turns out stale (another writer won); each reloads from Postgres. */
  staleRetries: number;
}

/**
 * Hosts this node's wallet actors: creates them on first use, routes commands to them, retries a
 * caller whose actor was fenced off, and drops idle ones (their snapshot stays in Postgres).
 */
export class ActorHost {
  private readonly actors = new Map<string, WalletActor>();
  private readonly sweeper: Timer;
  private readonly commits: CommitQueue;

  constructor(
    private readonly db: Db,
    private readonly render: Render,
    private readonly options: HostOptions,
  ) {
    this.commits = new CommitQueue(db, options);
    this.sweeper = setInterval(() => this.passivateIdle(), Math.max(50, Math.floor(options.idleMs / 2)));
    this.sweeper.unref?.();
  }

  async dispatch(walletId: string, envelope: Envelope): Promise<Outcome> {
    for (let attempt = 0; attempt <= this.options.staleRetries; attempt++) {
      try {
        return await this.actorFor(walletId).send(envelope);
      } catch (error) {
        if (!(error instanceof ActorStale)) throw error;
      }
    }
    return { status: 503, body: problem("UNAVAILABLE", "the wallet is moving between owners; retry with the same idempotency key") };
  }

  inspect(walletId: string) {
    const actor = this.actors.get(walletId);
    return actor ? actor.inspect() : { loaded: false, state: null, context: null, version: null, mailboxDepth: 0, running: false };
  }

  /** Commit totals since start (transactions, wallet batches in them, time spent committing). */
  get commitStats(): Readonly<CommitQueue["stats"]> {
    return this.commits.stats;
  }

  get size(): number {
    return this.actors.size;
  }

  /** Commands waiting in every mailbox on this node. */
  get mailboxDepth(): number {
    let depth = 0;
    for (const actor of this.actors.values()) depth += actor.inspect().mailboxDepth;
    return depth;
  }

  /**
   * Drop the actors of wallets this node no longer owns (a shard handed over): each finishes what
   * it has in hand first (bounded wait); their snapshots are in Postgres for the next owner.
   */
  async dropWhere(matches: (walletId: string) => boolean, waitMs = 5_000): Promise<void> {
    const leaving = [...this.actors.values()].filter((a) => matches(a.walletId));
    const deadline = Date.now() + waitMs;
    while (leaving.some((a) => a.busy) && Date.now() < deadline) await Bun.sleep(10);
    for (const actor of leaving) actor.die();
  }

  /** Drop every actor whose mailbox is empty and which did nothing for idleMs. */
  passivateIdle(now = Date.now()): number {
    let dropped = 0;
    for (const actor of this.actors.values()) {
      if (!actor.busy && now - actor.lastActiveMs >= this.options.idleMs) {
        actor.die();
        dropped++;
      }
    }
    return dropped;
  }

  /** Wait for every mailbox to empty (graceful shutdown), then stop. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    for (let i = 0; i < 200 && [...this.actors.values()].some((a) => a.busy); i++) await Bun.sleep(25);
  }

  private actorFor(walletId: string): WalletActor {
    let actor = this.actors.get(walletId);
    if (!actor) {
      actor = new WalletActor(walletId, this.db, this.commits, this.render, this.options, (dead) => {
        if (this.actors.get(dead.walletId) === dead) this.actors.delete(dead.walletId);
      });
      this.actors.set(walletId, actor);
    }
    return actor;
  }
}
