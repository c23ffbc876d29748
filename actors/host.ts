import type { Db } from "../lib/db";
import { problem } from "../lib/errors";
import type { ActorKind } from "./actor-kind";
import type { CommitQueue } from "./commit-queue";
import type { ActorKindName, Envelope, Outcome } from "./envelope";
import { ActorStale, type ActorLimits, MachineActor } from "./machine-actor";

export interface HostOptions extends ActorLimits {
  idleMs: number;
  /** Attempts when an actor turns out stale (another writer won); each reloads from Postgres. */
  staleRetries: number;
}

/**
 * Hosts this node's actors (wallets and chamas): creates them on first use, routes commands to
 * them, retries a caller whose actor was fenced off, and drops idle ones (their snapshot stays in
 * Postgres). Ids are UUIDs, so one map holds both kinds.
 */
export class ActorHost {
  private readonly actors = new Map<string, MachineActor>();
  private readonly sweeper: Timer;

  constructor(
    private readonly db: Db,
    private readonly kinds: Record<ActorKindName, ActorKind>,
    /** The wallets' group commit, for its statistics. */
    private readonly commits: CommitQueue,
    private readonly options: HostOptions,
  ) {
    this.sweeper = setInterval(() => this.passivateIdle(), Math.max(50, Math.floor(options.idleMs / 2)));
    this.sweeper.unref?.();
  }

  async dispatch(id: string, envelope: Envelope): Promise<Outcome> {
    const kind = this.kinds[envelope.kind ?? "wallet"];
    for (let attempt = 0; attempt <= this.options.staleRetries; attempt++) {
      const actor = this.actorFor(id, kind);
      // A wallet's id sent as a chama's (or the reverse) names nothing of that kind.
      if (actor.kind !== kind) return { status: 404, body: problem("NOT_FOUND", `no ${kind.name} with this id`) };
      try {
        return await actor.send(envelope);
      } catch (error) {
        if (!(error instanceof ActorStale)) throw error;
      }
    }
    return { status: 503, body: problem("UNAVAILABLE", `the ${kind.name} is moving between owners; retry with the same idempotency key`) };
  }

  inspect(id: string) {
    const actor = this.actors.get(id);
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
   * Drop the actors this node no longer owns (a shard handed over): each finishes what it has in
   * hand first (bounded wait); their snapshots are in Postgres for the next owner.
   */
  async dropWhere(matches: (id: string) => boolean, waitMs = 5_000): Promise<void> {
    const leaving = [...this.actors.values()].filter((a) => matches(a.id));
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

  private actorFor(id: string, kind: ActorKind): MachineActor {
    let actor = this.actors.get(id);
    if (!actor) {
      actor = new MachineActor(id, kind, this.db, this.options, (dead) => {
        if (this.actors.get(dead.id) === dead) this.actors.delete(dead.id);
      });
      this.actors.set(id, actor);
    }
    return actor;
  }
}
