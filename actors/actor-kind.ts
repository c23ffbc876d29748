import type { AnyActorRef, AnyMachineSnapshot } from "xstate";
import type { Db } from "../lib/db";
import type { PrincipalClaim } from "../lib/principal";
import type { CommitTicket } from "./commit-queue";
import type { ActorKindName, Idempotency, Reply } from "./envelope";

/** What every machine's effects have in common: a type, and "rejected" for a refusal. */
export interface AnyEffect {
  type: string;
}

/** What one batch of one actor asks to persist, in one transaction. */
export interface ActorWrite {
  id: string;
  /** The version the actor loaded (0: no row yet). */
  fromVersion: number;
  snapshot: AnyMachineSnapshot;
  at: string;
  /** Accepted effects only (refusals change nothing). */
  effects: AnyEffect[];
  keyed: { idempotency: Idempotency; outcome: Reply }[];
}

/**
 * What makes an actor a wallet or a chama. The actor (machine-actor.ts) does the rest the same way
 * for both: mailbox, batches through a live XState actor, idempotent replay, fencing, restarts.
 */
export interface ActorKind {
  name: ActorKindName;
  /** The committed snapshot and its version (0 and the "unopened" state when there is no row). */
  load(db: Db, id: string): Promise<{ snapshot: AnyMachineSnapshot; version: number }>;
  /**
   * The actor's own check that `principal` may send `command` to this actor in its current state
   * (actors/command-policy.ts); throws CofferError when not. Checked before anything else.
   */
  check(principal: PrincipalClaim, command: { type: string }, snapshot: AnyMachineSnapshot): void;
  /** The machine, running, from a snapshot. */
  start(snapshot: AnyMachineSnapshot, id: string): AnyActorRef;
  /**
   * Turns a command's effects into what its caller hears (a resource view or a problem). `version`
   * is the one the batch commits as, so an answer shows the version a read of it would.
   */
  render(command: { type: string }, effects: AnyEffect[], snapshot: AnyMachineSnapshot, version: number): Reply;
  /**
   * Persist one batch; resolves with the new version. Rejects with FencedError (another writer
   * won) or KeysTakenError (some idempotency keys were used meanwhile), see store-errors.ts.
   */
  commit(write: ActorWrite): Promise<number>;
  /**
   * Opt-in to chained commits: with it, the actor applies its next batch while the previous one
   * is still committing and hands it over behind that one's ticket (`after`; undefined when
   * nothing of this actor is in flight). The commit must then happen after `after`'s, or not at
   * all (actors/commit-queue.ts). Kinds without it commit one batch at a time.
   */
  commitBehind?(write: ActorWrite, after: CommitTicket | undefined): CommitTicket;
  /** Told what each committed batch did (to wake workers). */
  afterCommit?(effects: AnyEffect[]): void;
}
