import { log, reason } from "../lib/log";
import type { AnyActorRef, AnyMachineSnapshot } from "xstate";
import type { Db } from "../lib/db";
import { CofferError, refusal } from "../lib/errors";
import { databaseFailure, unavailable } from "../lib/db-errors";
import { scopeOf } from "../lib/principal";
import { type ActorKindName, type Envelope, idempotencyId, type Idempotency, type Reply } from "./envelope";
import { LruCache } from "../lib/lru";
import type { ActorKind, AnyEffect } from "./actor-kind";
import { CommitRefusedError, FencedError, KeysTakenError, loadOutcomes } from "./store-errors";

export interface ActorLimits {
  batchMax: number;
  mailboxMax: number;
  /** Outcomes remembered in memory for quick replays; older ones are read from Postgres. */
  recentMax: number;
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
 * - `dropped`: the actor left memory and takes no more commands.
 */
export type ActorEvent =
  | { type: "queued"; id: string; kind: ActorKindName; depth: number }
  | { type: "batch"; id: string; kind: ActorKindName; size: number }
  | { type: "committed"; id: string; kind: ActorKindName; version: number; commands: string[] }
  | { type: "replayed"; id: string; kind: ActorKindName; count: number }
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

/**
 * One wallet's or one chama's actor (its kind says which machine, how to load, render and commit).
 * Commands wait in a bounded mailbox and are applied one at a time, in order,
 * to the machine. Whatever is waiting when a batch starts is applied together in memory and
 * committed in ONE transaction (group commit); callers hear back only after that commit.
 */
export class MachineActor {
  /** The committed state: what Postgres holds for this wallet or chama. */
  private snapshot!: AnyMachineSnapshot;
  /** The running machine; ahead of `snapshot` only while a batch is being applied and committed. */
  private machine!: AnyActorRef;
  /** Effects the machine emitted for the command being applied. */
  private emitted: AnyEffect[] = [];
  private version = 0;
  private loaded = false;
  private running = false;
  private yielding = false;
  private readonly mailbox: Waiting[] = [];
  private readonly recent: LruCache<string, Remembered>;
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
    this.recent = new LruCache(limits.recentMax);
  }

  get busy(): boolean {
    return (this.running && !this.yielding) || this.mailbox.length > 0;
  }

  inspect() {
    return {
      loaded: this.loaded,
      state: this.loaded ? this.snapshot.value : null,
      context: this.loaded ? this.snapshot.context : null,
      version: this.version,
      mailboxDepth: this.mailbox.length,
      running: this.running,
    };
  }

  send(envelope: Envelope): Promise<Reply> {
    if (this.dead) return Promise.reject(new ActorStale(this.id));
    if (this.mailbox.length >= this.limits.mailboxMax) {
      return Promise.resolve(refusal("OVERLOADED", `this ${this.kind.name} has too many commands waiting; retry later`));
    }
    this.lastActiveMs = Date.now();
    return new Promise((resolve, reject) => {
      this.mailbox.push({ envelope, resolve, reject });
      this.report(this, { type: "queued", id: this.id, kind: this.kind.name, depth: this.mailbox.length });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.mailbox.length && !this.dead) {
        const batch = this.mailbox.splice(0, this.limits.batchMax);
        this.report(this, { type: "batch", id: this.id, kind: this.kind.name, size: batch.length });
        await this.runBatch(batch);
        // Let the callers just answered send their next command before the next batch is cut:
        // bigger batches, fewer commits. While it waits the actor counts as idle.
        this.yielding = true;
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.yielding = false;
      }
    } finally {
      this.running = false;
      this.lastActiveMs = Date.now();
      // Asking after a wallet (or chama) that does not exist must not leave an actor behind for every id tried.
      if (this.loaded && this.version === 0 && this.snapshot.value === "unopened" && !this.mailbox.length) this.die("unknown");
    }
  }

  private async runBatch(batch: Waiting[]): Promise<void> {
    try {
      if (!this.loaded) {
        const loaded = await this.kind.load(this.db, this.id);
        this.snapshot = loaded.snapshot;
        this.version = loaded.version;
        this.machine = this.start(loaded.snapshot);
        this.loaded = true;
      }
      // Keys another actor or node committed meanwhile make the commit fail; their stored outcomes
      // are then fetched and the batch is applied again from the same starting state. Each round
      // resolves at least one key, and a batch holds at most batchMax keys.
      for (let attempt = 0; ; attempt++) {
        const result = this.apply(batch);
        try {
          if (result.write) this.version = await this.kind.commit({ ...result.write, fromVersion: this.version });
          this.snapshot = result.snapshot;
          for (const [id, remembered] of result.remember) this.recent.set(id, remembered);
          batch.forEach((w, i) => w.resolve(result.outcomes[i]!));
          if (result.write) this.kind.afterCommit?.(result.write.effects);
          const commands = batch.map((w) => w.envelope.command.type);
          this.report(this, { type: "committed", id: this.id, kind: this.kind.name, version: this.version, commands });
          if (result.replayed) this.report(this, { type: "replayed", id: this.id, kind: this.kind.name, count: result.replayed });
          return;
        } catch (error) {
          if (error instanceof CommitRefusedError) {
            // Nothing was written (the node had too many commits waiting): back to the committed
            // state, and the callers retry later with the same keys.
            this.machine = this.start(this.snapshot);
            for (const w of batch) w.resolve(refusal("OVERLOADED", "this node has too many commits waiting; retry with the same idempotency key"));
            return;
          }
          if (!(error instanceof KeysTakenError) || attempt >= this.limits.batchMax) throw error;
          this.machine = this.start(this.snapshot); // back to the committed state
          for (const [id, stored] of await loadOutcomes(this.db, error.taken)) this.recent.set(id, stored);
        }
      }
    } catch (error) {
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
      for (const w of this.mailbox.splice(0)) w.reject(new ActorStale(this.id));
    }
  }

  /**
   * The machine, running, from a snapshot. Commands go through a live XState actor rather than the
   * pure `transition` function because that costs a fraction as much per command; the actor is
   * restarted from the committed snapshot whenever a batch has to be applied again.
   */
  private start(snapshot: AnyMachineSnapshot): AnyActorRef {
    const machine = this.kind.start(snapshot, this.id);
    machine.on("*", (effect) => this.emitted.push(effect as AnyEffect));
    machine.start();
    return machine;
  }

  /** Run every command of a batch through the machine, starting from the committed state. */
  private apply(batch: Waiting[]) {
    let snapshot = this.snapshot;
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
      const prior = remember.get(id) ?? this.recent.get(id);
      if (prior) {
        if (prior.fingerprint === idem.fingerprint) replayed++;
        outcomes.push(prior.fingerprint === idem.fingerprint ? prior.outcome : conflict());
        continue;
      }
      this.emitted = [];
      this.machine.send(envelope.command);
      const next = this.machine.getSnapshot();
      // A throwing guard or action is a programmer error: fail the batch, never persist it.
      if (next.status === "error") throw new Error(`${this.kind.name} machine failed on ${envelope.command.type}`);
      const emitted = this.emitted;
      const outcome: Reply = emitted.length
        ? this.kind.render(envelope.command, emitted, next, this.version + 1)
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
    const exists = this.version > 0 || snapshot.value !== "unopened";
    const write = exists && (effects.length || keyed.length) ? { id: this.id, snapshot, at, effects, keyed } : undefined;
    return { snapshot, outcomes, write, remember, replayed };
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

  die(reason: DropReason): void {
    if (this.dead) return;
    this.dead = true;
    this.report(this, { type: "dropped", id: this.id, kind: this.kind.name, reason });
  }
}

function conflict(): Reply {
  return refusal("IDEMPOTENCY_CONFLICT", "this idempotency key was already used with a different request");
}

