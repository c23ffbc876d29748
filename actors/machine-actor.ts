import { log, reason } from "../lib/log";
import type { AnyActorRef, AnyMachineSnapshot } from "xstate";
import type { Db } from "../lib/db";
import { CofferError, refusal } from "../lib/errors";
import { databaseFailure, unavailable } from "../lib/db-errors";
import { scopeOf } from "../lib/principal";
import { type ActorKindName, type Envelope, idempotencyId, type Idempotency, type Reply } from "./envelope";
import { LruCache } from "../lib/lru";
import type { ActorKind, ActorWrite, AnyEffect } from "./actor-kind";
import { type CommitTicket, PredecessorFailedError } from "./commit-queue";
import { CommitRefusedError, FencedError, KeysTakenError, loadOutcomes } from "./store-errors";
import { toVersion } from "./write-path";

export interface ActorLimits {
  batchMax: number;
  mailboxMax: number;
  /** Outcomes remembered in memory for quick replays; older ones are read from Postgres. */
  recentMax: number;
  /**
   * Batches one actor keeps committing at once, each applied on top of the one before (kinds with
   * `commitBehind` only; others commit one at a time). 1: wait for each commit before the next batch.
   */
  chainMax?: number;
}

/** The actor must be dropped and its callers retried against a fresh load (another writer won). */
export class ActorStale extends Error {}

/**
 * Why an actor left memory: passivated after `idle`ness, `evicted` to make room under the node's
 * cap, `moved` with its shard to another node, `stale` (another writer won), `failed` (the database
 * failed a batch), or `unknown` (nothing by this id exists, so nothing is kept for it).
 */
export type DropReason = "idle" | "evicted" | "moved" | "stale" | "failed" | "unknown";

/**
 * What an actor reports as it works; the host passes each on to its listeners (operators, and
 * tests that wait for "the actor got this far" instead of polling its state).
 * - `queued`: a command entered the mailbox; `depth` is the mailbox length after it.
 * - `batch`: a batch of `size` commands left the mailbox and is being applied and committed.
 * - `committed`: a batch's callers were answered after its commit (`version` is the committed
 *   version; unchanged when the batch had nothing to write, e.g. every command was refused).
 * - `replayed`: `count` commands of a batch just answered were retries of an idempotency key the
 *   actor had already answered, and got that first outcome again (nothing applied twice).
 * - `hibernated`: idle for a while, the actor let go of its running machine and recent outcomes.
 * - `dropped`: the actor left memory and takes no more commands.
 */
export type ActorEvent =
  | { type: "queued"; id: string; kind: ActorKindName; depth: number }
  | { type: "batch"; id: string; kind: ActorKindName; size: number }
  | { type: "committed"; id: string; kind: ActorKindName; version: number; commands: string[] }
  | { type: "replayed"; id: string; kind: ActorKindName; count: number }
  | { type: "hibernated"; id: string; kind: ActorKindName }
  | { type: "dropped"; id: string; kind: ActorKindName; reason: DropReason };

interface Waiting {
  envelope: Envelope;
  resolve: (outcome: Reply) => void;
  reject: (error: Error) => void;
}

interface Remembered {
  fingerprint: string;
  outcome: Reply;
}

/** A batch applied in memory and handed to commit; its callers hear back once it (and every batch before it) committed. */
interface InFlight {
  batch: Waiting[];
  /** The state after this batch, and the version it commits as. */
  snapshot: AnyMachineSnapshot;
  version: number;
  outcomes: Reply[];
  write: ActorWrite | undefined;
  remember: Map<string, Remembered>;
  replayed: number;
  ticket: CommitTicket | undefined;
  /** Settles with the committed version (at once for a batch with nothing to write). */
  done: Promise<number>;
}

/**
 * One wallet's or one chama's actor (its kind says which machine, how to load, render and commit).
 * Commands wait in a bounded mailbox and are applied one at a time, in order,
 * to the machine. Whatever is waiting when a batch starts is applied together in memory and
 * committed in ONE transaction (group commit); callers hear back only after that commit.
 *
 * Chained commits (kinds with `commitBehind`): while batch N commits, what waits is cut into
 * batch N+1, applied on top of N's state (not yet committed) and handed over behind N, up to
 * `chainMax` batches at once. Batches are answered strictly in order, each after its own commit.
 * If N does not commit, nothing after it does either (the commit queue sees to it): the actor
 * then handles N as it always has, and the commands of the batches behind N are never answered
 * from the state they were applied to. They are applied again from the committed state (keys
 * taken), retried by the host on a fresh load (fenced, refused by the database), or answered
 * like N (the database failed them all: their fate is unknown, and their keys make a retry safe).
 */
export class MachineActor {
  /** The committed state: what Postgres holds for this wallet or chama. */
  private snapshot!: AnyMachineSnapshot;
  /** The running machine, at `tip`: ahead of `snapshot` by the batches in `chain`. */
  private machine: AnyActorRef | undefined;
  /** Effects the machine emitted for the command being applied. */
  private emitted: AnyEffect[] = [];
  private version = 0;
  /** The state and version after every batch in flight (the committed ones when none is). */
  private tip!: AnyMachineSnapshot;
  private tipVersion = 0;
  /** Batches applied and handed to commit, oldest first; the first is the next to be answered. */
  private chain: InFlight[] = [];
  private loaded = false;
  private loading = false;
  private settling = false;
  private cutSoon = false;
  /** A batch before the last commit failed and is being handled: no new batches meanwhile. */
  private failing = false;
  /** The machine threw (a programmer error): once the batches in flight are answered, the actor goes. */
  private broken = false;
  /** Rounds of "keys taken" since the last commit (each resolves at least one key). */
  private takenRounds = 0;
  private readonly mailbox: Waiting[] = [];
  /** Made on first use, dropped when the actor hibernates (replays then come from Postgres). */
  private recent: LruCache<string, Remembered> | undefined;
  private readonly chainMax: number;
  lastActiveMs = Date.now();
  /** Set once the actor has been dropped; it takes no more commands. */
  dead = false;

  constructor(
    readonly id: string,
    readonly kind: ActorKind,
    private readonly db: Db,
    private readonly limits: ActorLimits,
    /** Told every event; a `dropped` one is the host's cue to forget this actor. */
    private readonly report: (actor: MachineActor, event: ActorEvent) => void,
  ) {
    this.chainMax = kind.commitBehind ? Math.max(1, limits.chainMax ?? 1) : 1;
  }

  get busy(): boolean {
    return this.loading || this.chain.length > 0 || this.mailbox.length > 0;
  }

  /** Commands waiting behind the batch being committed: the mailbox and the batches chained behind it. */
  private get depth(): number {
    let depth = this.mailbox.length;
    for (let i = 1; i < this.chain.length; i++) depth += this.chain[i]!.batch.length;
    return depth;
  }

  inspect() {
    return {
      loaded: this.loaded,
      state: this.loaded ? this.snapshot.value : null,
      context: this.loaded ? this.snapshot.context : null,
      version: this.version,
      mailboxDepth: this.depth,
      running: this.loading || this.chain.length > 0,
    };
  }

  send(envelope: Envelope): Promise<Reply> {
    if (this.dead) return Promise.reject(new ActorStale(this.id));
    if (this.depth >= this.limits.mailboxMax) {
      return Promise.resolve(refusal("OVERLOADED", `this ${this.kind.name} has too many commands waiting; retry later`));
    }
    this.lastActiveMs = Date.now();
    return new Promise((resolve, reject) => {
      this.mailbox.push({ envelope, resolve, reject });
      this.report(this, { type: "queued", id: this.id, kind: this.kind.name, depth: this.depth });
      if (!this.loaded) void this.load();
      else if (!this.chain.length) this.cut();
      else this.cutLater();
    });
  }

  /**
   * Cut the next batch in a moment, once this turn's commands (and callers just answered, sending
   * their next one) have joined the mailbox: bigger batches, fewer commits.
   */
  private cutLater(): void {
    if (this.cutSoon || this.chain.length >= this.chainMax) return;
    this.cutSoon = true;
    setImmediate(() => {
      this.cutSoon = false;
      this.cut();
    });
  }

  /** Cut, apply and hand over batches while the mailbox has commands and the chain has room. */
  private cut(): void {
    while (this.mailbox.length && this.chain.length < this.chainMax && this.loaded && !this.dead && !this.failing && !this.broken) {
      const batch = this.mailbox.splice(0, this.limits.batchMax);
      this.report(this, { type: "batch", id: this.id, kind: this.kind.name, size: batch.length });
      let result: ReturnType<MachineActor["apply"]>;
      try {
        result = this.apply(batch);
      } catch (error) {
        // A throwing guard or action is a programmer error: nothing of this batch is persisted.
        log("error", `${this.kind.name} batch failed`, { id: this.id, error: reason(error) });
        for (const w of batch) w.resolve(unavailable());
        this.broken = true;
        this.machine = undefined; // started again from `tip` when next needed
        break;
      }
      const write = result.write ? { ...result.write, fromVersion: this.tipVersion } : undefined;
      const entry: InFlight = { batch, ...result, write, version: this.tipVersion, ticket: undefined, done: Promise.resolve(this.tipVersion) };
      if (write) {
        entry.version = toVersion(write);
        if (this.kind.commitBehind) {
          const after = this.chain.findLast((e) => e.ticket)?.ticket;
          entry.ticket = this.kind.commitBehind(write, after);
          entry.done = entry.ticket.done;
        } else {
          entry.done = this.kind.commit(write);
        }
        entry.done.catch(() => {}); // awaited in order by settle(); a later one may fail first
      }
      this.tip = result.snapshot;
      this.tipVersion = entry.version;
      this.chain.push(entry);
    }
    if (this.chain.length && !this.settling) void this.settle();
    else if (!this.chain.length) this.quiet();
  }

  private async load(): Promise<void> {
    if (this.loading || this.dead) return;
    this.loading = true;
    try {
      const loaded = await this.kind.load(this.db, this.id);
      this.snapshot = this.tip = loaded.snapshot;
      this.version = this.tipVersion = loaded.version;
      this.loaded = true;
    } catch (error) {
      this.loading = false;
      this.fail(error, this.mailbox.splice(0, this.limits.batchMax));
      return;
    }
    this.loading = false;
    this.cut();
  }

  /** Answer the batches in flight in order, each once its commit settled. */
  private async settle(): Promise<void> {
    this.settling = true;
    try {
      while (this.chain.length) {
        const head = this.chain[0]!;
        let version: number;
        try {
          version = await head.done;
        } catch (error) {
          await this.headFailed(error);
          continue;
        }
        this.chain.shift();
        this.committed(head, version);
        this.cutLater();
      }
    } finally {
      this.settling = false;
    }
    this.quiet();
  }

  /** Nothing in flight: what an actor with nothing to do checks. */
  private quiet(): void {
    if (this.chain.length || this.loading) return;
    this.lastActiveMs = Date.now();
    if (this.broken) {
      this.die("failed");
      for (const w of this.mailbox.splice(0)) w.reject(new ActorStale(this.id));
      return;
    }
    if (this.dead) {
      for (const w of this.mailbox.splice(0)) w.reject(new ActorStale(this.id));
      return;
    }
    // Asking after a wallet (or chama) that does not exist must not leave an actor behind for every id tried.
    if (this.loaded && this.version === 0 && this.snapshot.value === "unopened" && !this.mailbox.length) this.die("unknown");
  }

  private committed(head: InFlight, version: number): void {
    if (head.write && version !== head.version) log("error", `${this.kind.name} committed as an unexpected version`, { id: this.id, expected: head.version, version });
    this.snapshot = head.snapshot;
    this.version = version;
    this.takenRounds = 0;
    if (head.remember.size) {
      const recent = (this.recent ??= new LruCache(this.limits.recentMax));
      for (const [id, remembered] of head.remember) recent.set(id, remembered);
    }
    head.batch.forEach((w, i) => w.resolve(head.outcomes[i]!));
    if (head.write) this.kind.afterCommit?.(head.write.effects);
    const commands = head.batch.map((w) => w.envelope.command.type);
    this.report(this, { type: "committed", id: this.id, kind: this.kind.name, version: this.version, commands });
    if (head.replayed) this.report(this, { type: "replayed", id: this.id, kind: this.kind.name, count: head.replayed });
  }

  /**
   * The first batch in flight did not commit, so none behind it did (the queue fails them, or
   * their statements' guards do). Once all of them have settled, the actor is back at its
   * committed state and answers as it always has for the first, and consistently for the rest.
   */
  private async headFailed(error: unknown): Promise<void> {
    this.failing = true;
    const chain = this.chain;
    const later = await Promise.allSettled(chain.slice(1).map((e) => e.done));
    this.chain = [];
    this.tip = this.snapshot;
    this.tipVersion = this.version;
    this.stopMachine(); // started again from the committed state when next needed
    // A batch with nothing to write (replays, refusals without a key) is "done" at once: it did
    // not commit anything, and it is applied again below like the others.
    if (later.some((r, i) => r.status === "fulfilled" && chain[i + 1]!.write)) {
      // A batch committed behind one that failed. Expected only when the first's answer was lost with
      // its connection (it did commit; its fate was unknown to us); otherwise a bug. Either way memory
      // cannot be trusted: everyone in flight hears 503 and retries with their key on a fresh load.
      const lost = databaseFailure(error) === "unavailable";
      log(lost ? "warn" : "error", `${this.kind.name} batch committed behind one whose ${lost ? "answer was lost" : "commit failed"}`, { id: this.id, error: reason(error) });
      this.failing = false;
      this.fail(new Error("a chained batch committed behind a failed one"), chain.flatMap((e) => e.batch));
      return;
    }
    const behind = chain.slice(1).flatMap((e) => e.batch);
    if (error instanceof CommitRefusedError) {
      // Nothing was written (the node had too many commits waiting): the callers retry later with
      // the same keys; the actor stays at its committed state.
      for (const w of [...chain[0]!.batch, ...behind]) w.resolve(refusal("OVERLOADED", "this node has too many commits waiting; retry with the same idempotency key"));
      this.failing = false;
      this.cutLater();
      return;
    }
    if (error instanceof KeysTakenError && this.takenRounds < this.limits.batchMax) {
      // Keys another actor or node committed meanwhile: their stored outcomes apply, and every
      // batch from the failed one on is applied again from the committed state. Each round
      // resolves at least one key, and a batch holds at most batchMax keys.
      this.takenRounds++;
      try {
        const recent = (this.recent ??= new LruCache(this.limits.recentMax));
        for (const [id, stored] of await loadOutcomes(this.db, error.taken)) recent.set(id, stored);
      } catch (loadError) {
        this.failing = false;
        this.fail(loadError, chain.flatMap((e) => e.batch));
        return;
      }
      this.mailbox.unshift(...chain.flatMap((e) => e.batch));
      this.failing = false;
      this.cut();
      return;
    }
    this.failing = false;
    // The batches behind the failed one: none of them was written. Those the database never saw are
    // retried on a fresh load; those it failed with the first are answered like it.
    const unknown = error instanceof FencedError || databaseFailure(error) !== "unavailable" ? [] : chain.slice(1).filter((_, i) => !(later[i]!.status === "rejected" && (later[i] as PromiseRejectedResult).reason instanceof PredecessorFailedError));
    const retried = chain.slice(1).filter((e) => !unknown.includes(e)).flatMap((e) => e.batch);
    this.fail(error, [...chain[0]!.batch, ...unknown.flatMap((e) => e.batch)], retried);
  }

  /**
   * The actor is done for: `batch` is answered for `error`, `retried` and the mailbox go to a
   * fresh load (the host retries them).
   */
  private fail(error: unknown, batch: Waiting[], retried: Waiting[] = []): void {
    this.die(error instanceof FencedError ? "stale" : "failed");
    if (error instanceof FencedError) {
      // Someone else wrote this wallet or chama: our state is stale. Callers are retried on a fresh load.
      for (const w of batch) w.reject(new ActorStale(this.id));
    } else if (databaseFailure(error) === "bug") {
      // Postgres refused what we asked (lib/db-errors.ts: a constraint, an undefined column, bad
      // data): the same batch would be refused again, so a retry cannot help. Nothing committed.
      for (const w of batch) w.resolve(refusal("INTERNAL", "something went wrong on our side; it has been logged"));
      log("error", `${this.kind.name} batch refused by the database`, { id: this.id, code: (error as { code?: unknown }).code, error: reason(error) });
    } else {
      // The database is not there for us (or the commit's fate is unknown). Nothing is
      // acknowledged; the caller may retry with the same idempotency key and will get exactly
      // one effect.
      for (const w of batch) w.resolve(unavailable());
      log("error", `${this.kind.name} batch failed`, { id: this.id, error: reason(error) });
    }
    for (const w of [...retried, ...this.mailbox.splice(0)]) w.reject(new ActorStale(this.id));
  }

  /**
   * The machine, running, from a snapshot. Commands go through a live XState actor rather than the
   * pure `transition` function because that costs a fraction as much per command; the actor is
   * restarted from the committed snapshot whenever a batch has to be applied again.
   */
  private start(snapshot: AnyMachineSnapshot): AnyActorRef {
    const machine = this.kind.start(snapshot, this.id);
    this.emitted = [];
    machine.on("*", (effect) => this.emitted.push(effect as AnyEffect));
    machine.start();
    return machine;
  }

  /** Run every command of a batch through the machine, starting from the state after the batches in flight. */
  private apply(batch: Waiting[]) {
    let snapshot = this.tip;
    const outcomes: Reply[] = [];
    const effects: AnyEffect[] = [];
    const keyed: { idempotency: Idempotency; outcome: Reply }[] = [];
    const remember = new Map<string, Remembered>();
    let replayed = 0;
    let at = "";

    for (const { envelope } of batch) {
      // Who asked is checked here, where the money is, whichever way the command came; a refusal
      // changes nothing and is not remembered under the key.
      const refused = this.refusal(envelope, snapshot);
      if (refused) {
        outcomes.push(refused);
        continue;
      }
      const idem = envelope.idempotency;
      const id = idempotencyId(idem);
      const prior = remember.get(id) ?? this.inFlight(id) ?? this.recent?.get(id);
      if (prior) {
        if (prior.fingerprint === idem.fingerprint) replayed++;
        outcomes.push(prior.fingerprint === idem.fingerprint ? prior.outcome : conflict());
        continue;
      }
      this.emitted = [];
      const machine = (this.machine ??= this.start(this.tip));
      machine.send(envelope.command);
      const next = machine.getSnapshot();
      // A throwing guard or action is a programmer error: fail the batch, never persist it.
      if (next.status === "error") throw new Error(`${this.kind.name} machine failed on ${envelope.command.type}`);
      const emitted = this.emitted;
      const outcome: Reply = emitted.length
        ? this.kind.render(envelope.command, emitted, next, this.tipVersion + 1)
        : refusal("INVALID_TRANSITION", `${envelope.command.type} is not allowed while the ${this.kind.name} is ${String(snapshot.value)}`);
      snapshot = next;
      at = envelope.command.at;
      outcomes.push(outcome);
      effects.push(...emitted.filter((e) => e.type !== "rejected"));
      keyed.push({ idempotency: idem, outcome });
      remember.set(id, { fingerprint: idem.fingerprint, outcome });
    }

    // A wallet or chama that does not exist (and was not opened by this batch) writes nothing: there
    // is no row to fence against, and a "not found" is not worth remembering.
    const exists = this.tipVersion > 0 || snapshot.value !== "unopened";
    const write = exists && (effects.length || keyed.length) ? { id: this.id, snapshot, at, effects, keyed } : undefined;
    return { snapshot, outcomes, write, remember, replayed };
  }

  /** An outcome a batch still in flight holds for this key (its callers hear it only if it commits). */
  private inFlight(id: string): Remembered | undefined {
    for (let i = this.chain.length - 1; i >= 0; i--) {
      const found = this.chain[i]!.remember.get(id);
      if (found) return found;
    }
    return undefined;
  }

  /** A problem outcome when the envelope's principal may not send its command here (logged as a security event). */
  private refusal(envelope: Envelope, snapshot: AnyMachineSnapshot): Reply | undefined {
    const { principal, idempotency, command } = envelope;
    try {
      // Keys live in the caller's own scope: a claim cannot reach into another caller's results.
      const scope = principal.role === "system" ? "system" : scopeOf(principal);
      if (idempotency.scope !== scope) throw new CofferError("FORBIDDEN", "this credential may not do that");
      this.kind.check(principal, command, snapshot);
      return undefined;
    } catch (error) {
      if (!(error instanceof CofferError)) throw error;
      log("warn", "security: command refused by the actor", { kind: this.kind.name, id: this.id, command: command.type, role: principal.role, code: error.code });
      return refusal(error.code, error.detail, error.extra);
    }
  }

  /**
   * Idle for a while (the host's sweep, actors/host.ts): keep only the committed state. The running
   * machine and the recent outcomes are what a loaded actor costs most (about 5 KB of heap between
   * them); both are rebuilt on the next command (a replay of an older key is then answered from
   * Postgres, as after passivation).
   */
  hibernate(): void {
    if (this.busy || this.dead || !this.loaded || (!this.machine && !this.recent)) return;
    this.stopMachine();
    this.recent = undefined;
    this.emitted = NOTHING_EMITTED;
    this.report(this, { type: "hibernated", id: this.id, kind: this.kind.name });
  }

  private stopMachine(): void {
    this.machine?.stop();
    this.machine = undefined;
  }

  die(reason: DropReason): void {
    if (this.dead) return;
    this.dead = true;
    this.report(this, { type: "dropped", id: this.id, kind: this.kind.name, reason });
  }
}

/** What a hibernating actor holds for `emitted` (replaced by a fresh array before each command). */
const NOTHING_EMITTED: AnyEffect[] = [];

function conflict(): Reply {
  return refusal("IDEMPOTENCY_CONFLICT", "this idempotency key was already used with a different request");
}

