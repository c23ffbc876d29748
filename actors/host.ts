import type { Db } from "../lib/db";
import { refusal } from "../lib/errors";
import { Listeners } from "../lib/listeners";
import type { ActorKind } from "./actor-kind";
import type { CommitQueue } from "./commit-queue";
import type { ActorKindName, Envelope, Reply } from "./envelope";
import { ActorStale, type ActorEvent, type ActorLimits, MachineActor } from "./machine-actor";

export type { ActorEvent, DropReason } from "./machine-actor";

export interface HostOptions extends ActorLimits {
  idleMs: number;
  /**
   * An actor idle this long keeps only its committed state (MachineActor.hibernate: no running
   * machine, no recent outcomes) until its next command; idleMs later it is dropped. Default 1 s.
   */
  hibernateMs?: number;
  /** Attempts when an actor turns out stale (another writer won); each reloads from Postgres. */
  staleRetries: number;
  /**
   * Live actors on this node at most. A new one past it first passivates the idlest actors with
   * nothing in hand; when every one is busy, the command is answered 503 OVERLOADED instead.
   */
  actorsMax: number;
}

const HIBERNATE_MS_DEFAULT = 1_000;
/** Actors looked at, idlest first, for one to passivate when the node is at its cap. */
const EVICTION_SCAN_MAX = 1_024;
/** Listeners at once (tests, operators' probes); past it `on` throws: one was never removed. */
const LISTENERS_MAX = 64;

/**
 * Hosts this node's actors (wallets and chamas): creates them on first use, routes commands to
 * them, retries a caller whose actor was fenced off, and drops idle ones (their snapshot stays in
 * Postgres). Ids are UUIDs, so one map holds both kinds. The map is kept in order of last use
 * (least recent first), so the idlest actors are the first ones looked at when room is needed.
 */
export class ActorHost {
  private readonly actors = new Map<string, MachineActor>();
  private readonly listeners = new Listeners<ActorEvent>(LISTENERS_MAX);
  private readonly sweeper: Timer;

  constructor(
    private readonly db: Db,
    private readonly kinds: Record<ActorKindName, ActorKind>,
    /** The wallets' group commit, for its statistics. */
    private readonly commits: CommitQueue,
    private readonly options: HostOptions,
  ) {
    if (!Number.isInteger(options.actorsMax) || options.actorsMax < 1) throw new Error(`actorsMax must be a positive integer, not ${options.actorsMax}`);
    const sweepMs = Math.min(Math.floor(options.idleMs / 2), options.hibernateMs ?? HIBERNATE_MS_DEFAULT);
    this.sweeper = setInterval(() => this.passivateIdle(), Math.max(50, sweepMs));
    this.sweeper.unref?.();
  }

  async dispatch(id: string, envelope: Envelope): Promise<Reply> {
    const kind = this.kinds[envelope.kind ?? "wallet"];
    for (let attempt = 0; attempt <= this.options.staleRetries; attempt++) {
      const actor = this.actorFor(id, kind);
      if (!actor) return refusal("OVERLOADED", "this node holds as many busy actors as it may; retry with the same idempotency key");
      // A wallet's id sent as a chama's (or the reverse) names nothing of that kind.
      if (actor.kind !== kind) return refusal("NOT_FOUND", `no ${kind.name} with this id`);
      try {
        return await actor.send(envelope);
      } catch (error) {
        if (!(error instanceof ActorStale)) throw error;
      }
    }
    return refusal("UNAVAILABLE", `the ${kind.name} is moving between owners; retry with the same idempotency key`);
  }

  /**
   * Be told every `type` event from now on (see ActorEvent): `queued`, `batch`, `committed`, `replayed`,
   * `dropped`. Returns the function that stops it; at most LISTENERS_MAX listen at once.
   * Listeners run synchronously inside the actor: keep them short, and never send from one.
   */
  on<T extends ActorEvent["type"]>(type: T, fn: (event: Extract<ActorEvent, { type: T }>) => void): () => void {
    return this.listeners.on(type, fn);
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
    for (const actor of leaving) actor.die("moved");
  }

  /** Drop every actor whose mailbox is empty and which did nothing for idleMs; hibernate those idle for hibernateMs. */
  passivateIdle(now = Date.now()): number {
    let dropped = 0;
    const hibernateMs = this.options.hibernateMs ?? HIBERNATE_MS_DEFAULT;
    // (Deleting from a Map while iterating it is well defined: each entry is visited once.)
    for (const actor of this.actors.values()) {
      if (actor.busy) continue;
      const idleMs = now - actor.lastActiveMs;
      if (idleMs >= this.options.idleMs) {
        actor.die("idle");
        dropped++;
      } else if (idleMs >= hibernateMs) {
        actor.hibernate();
      }
    }
    return dropped;
  }

  /** Wait for every mailbox to empty (graceful shutdown), then stop. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    for (let i = 0; i < 200 && [...this.actors.values()].some((a) => a.busy); i++) await Bun.sleep(25);
  }

  /** The live actor for `id`, made (room permitting) if there is none; undefined when there is no room. */
  private actorFor(id: string, kind: ActorKind): MachineActor | undefined {
    let actor = this.actors.get(id);
    if (actor) {
      // Most recently used goes last: the front of the map is where the idlest actors are.
      this.actors.delete(id);
    } else {
      if (this.actors.size >= this.options.actorsMax && !this.makeRoom()) return undefined;
      actor = new MachineActor(id, kind, this.db, this.options, (from, event) => this.heard(from, event));
    }
    this.actors.set(id, actor);
    return actor;
  }

  /**
   * Passivate the idlest actor that has nothing in hand (its snapshot is in Postgres), looking at
   * no more than EVICTION_SCAN_MAX of them, least recently used first. False when none could go.
   */
  private makeRoom(): boolean {
    let looked = 0;
    for (const actor of this.actors.values()) {
      if (looked++ >= EVICTION_SCAN_MAX) break;
      if (!actor.busy) {
        actor.die("evicted");
        return this.actors.size < this.options.actorsMax;
      }
    }
    return false;
  }

  private heard(actor: MachineActor, event: ActorEvent): void {
    if (event.type === "dropped" && this.actors.get(actor.id) === actor) this.actors.delete(actor.id);
    this.listeners.emit(event);
  }
}
