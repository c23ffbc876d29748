import { connect, type Db } from "../lib/db";
import { databaseFailure } from "../lib/db-errors";
import { log, reason } from "../lib/log";
import { idempotencyId } from "./envelope";
import { CommitRefusedError, FencedError, KeysTakenError } from "./store-errors";
import { commitWrites, LANE_OUT_OF_STEP, type AggregateWrite as BatchWrite } from "./write-path";

/**
 * A batch was applied on top of an earlier batch of the same actor whose commit failed (or never
 * happened): it was not written, and must not be. Its actor re-runs its commands from the state
 * that did commit.
 */
export class PredecessorFailedError extends Error {}

/** What `commitBehind` hands back: the batch's commit, and the ticket a later batch of the same actor is sent behind. */
export interface CommitTicket {
  readonly done: Promise<number>;
}

type State = "waiting" | "sent" | "committed" | "failed";

interface Pending extends CommitTicket {
  write: BatchWrite;
  resolve: (version: number) => void;
  reject: (error: Error) => void;
  state: State;
  lane: Lane;
  /** The same actor's previous batch, unsettled when this one was handed over: this one commits only after it. */
  after: Pending | undefined;
  /** Later batches of the same actor that were handed over behind this one. */
  behind: Pending[];
  /** Times sent again because a statement it was in failed for someone else's reason. */
  resends: number;
}

interface Statement {
  pendings: Pending[];
  /** What this statement's transaction sets `coffer.lane` to on its connection. */
  token: string;
}

/**
 * Where statements go. With its own connection (`session`), a lane sends up to `depth` statements
 * without waiting for answers (Postgres runs one connection's statements in order), each in its
 * own transaction guarded on the one before it. Without one (the pool), statements run wherever
 * the pool puts them, so nothing may depend on a statement still in flight.
 */
interface Lane {
  index: number;
  session: Db | undefined;
  /** The session's life: broken once its connection was lost (see sendOnLane). */
  client: LaneClient;
  depth: number;
  waiting: Pending[];
  /** Batches of statements that failed for another batch's reason, sent again once the lane is quiet. */
  again: Pending[];
  inFlight: Statement[];
  /** A statement failed: nothing more is sent until every statement behind it has come back. */
  draining: boolean;
  tokens: number;
  /** The last statement sent and its answers, handled in the order they were sent. */
  handled: Promise<void>;
}

export interface CommitQueueLimits {
  /** Statements (transactions) in flight at once, over all lanes. Writes arriving meanwhile wait and go out together. */
  inFlightMax: number;
  /** Batches (each from a different aggregate) in one transaction at most. */
  writesMax: number;
  /**
   * Batches waiting for a transaction at most. One more is refused at once with
   * CommitRefusedError: its actor answers 503 OVERLOADED and nothing is written.
   */
  waitingMax: number;
  /**
   * Commit lanes: connections of their own (from `openLane`), each aggregate always on the same
   * one. 0 (or no `openLane`): the pool, as before lanes existed.
   */
  lanes?: number;
  /** Statements one lane keeps in flight, one behind the other on its connection (1: no pipelining). */
  depth?: number;
}

/** A statement sent again this many times (other statements' failures) is refused instead. */
const RESENDS_MAX = 16;

/**
 * Group commit across aggregates, with commits pipelined per lane.
 *
 * Batches from different actors that wait here together are written in one statement, one
 * transaction. A wallet that was fenced or whose key was taken does not sink the others: it is
 * answered, and the rest are committed again without it.
 *
 * An actor may hand over its next batch (N+1) while batch N is still committing (`commitBehind`
 * with N's ticket). N+1 goes to the same lane, in a later statement on the same connection, so
 * Postgres runs it after N. It must commit only if N did: fencing on the version alone is not
 * enough, since another writer that moved the row to the version N would have written makes
 * N+1's version check pass on a state it was not computed from. So on a lane every statement is
 * ONE call, `coffer_commit_on_lane(batch, keys, expect, token)` (migration 031), in its own
 * transaction: it writes only if the session setting `coffer.lane` holds the token the previous
 * statement on the lane set (`expect`), and sets its own. A setting is rolled back with a failed
 * transaction and a new connection has none, so if a statement fails (or the connection is
 * replaced), every statement sent behind it is refused by its guard (SQLSTATE CF412) and writes
 * nothing; their batches are sent again (or, if their own predecessor failed, rejected with
 * PredecessorFailedError).
 */
export class CommitQueue {
  private readonly lanes: Lane[];
  private waitingCount = 0;
  private inFlight = 0;
  private nextLane = 0;
  /** Running totals, for operators and the benchmark: how well commits are being shared. */
  readonly stats = { transactions: 0, batches: 0, busyMs: 0, refused: 0, resent: 0, pipelined: 0 };

  constructor(
    private readonly db: Db,
    private readonly limits: CommitQueueLimits,
    /** The writer; tests may watch it, production uses commitWrites. */
    private readonly write: typeof commitWrites = commitWrites,
    /** A lane's own connection (a client of one connection; see connectCommitLane). */
    private readonly openLane?: (index: number) => Db,
    /** A lane statement out this long is taken for lost with its connection (statement_timeout is 30 s). */
    private readonly stallMs = 40_000,
    /**
     * A lane statement out this long gets a `select 1` sent behind it on its connection. A healthy
     * connection answers it in turn, after the statement (which may be waiting on a lock); a dead
     * one the driver had not noticed fails the write, and the lane is replaced at once instead of
     * after stallMs. Seen under chaos: a lane whose backend was terminated sat with statements
     * unanswered until the next write to it, seconds later.
     */
    private readonly probeMs = 1_000,
  ) {
    const count = openLane ? Math.max(0, Math.min(limits.lanes ?? 0, limits.inFlightMax)) : 0;
    this.lanes = count
      ? Array.from({ length: count }, (_, index) => newLane(index, openLane!(index), Math.max(1, limits.depth ?? 1)))
      : [newLane(0, undefined, limits.inFlightMax)];
  }

  /** One batch with nothing of its actor's in flight before it. Resolves with the version it committed as. */
  commit(write: BatchWrite): Promise<number> {
    return this.commitBehind(write, undefined).done;
  }

  /**
   * One batch, computed on top of `after` (the same actor's previous batch, whose commit may not
   * have settled): it commits after `after` did, or not at all (PredecessorFailedError).
   */
  commitBehind(write: BatchWrite, after: CommitTicket | undefined): CommitTicket {
    const before = after as Pending | undefined;
    if (before?.state === "failed") return rejected(new PredecessorFailedError(`${write.id}: the batch before this one did not commit`));
    if (this.waitingCount >= this.limits.waitingMax) {
      this.stats.refused++;
      return rejected(new CommitRefusedError(`${this.waitingCount} batches are already waiting to commit`));
    }
    const unsettled = before && (before.state === "waiting" || before.state === "sent") ? before : undefined;
    let resolve!: (version: number) => void;
    let reject!: (error: Error) => void;
    const done = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const lane = unsettled?.lane ?? this.laneOf(write.id);
    const p: Pending = { write, done, resolve, reject, state: "waiting", lane, after: unsettled, behind: [], resends: 0 };
    // An actor awaits its batches in order, so a later one may fail before anyone listens.
    done.catch(() => {});
    unsettled?.behind.push(p);
    lane.waiting.push(p);
    this.waitingCount++;
    this.pump();
    return p;
  }

  /** Statements in flight and batches waiting, now (for tests and operators). */
  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waitingCount };
  }

  /** Ends the lanes' connections (after what is in flight). */
  async close(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.session?.end({ timeout: 5 })));
  }

  private laneOf(id: string): Lane {
    if (this.lanes.length === 1) return this.lanes[0]!;
    let h = 0;
    for (let i = 0; i < id.length; i++) h = (Math.imul(h, 31) + id.charCodeAt(i)) | 0;
    return this.lanes[(h >>> 0) % this.lanes.length]!;
  }

  private pump(): void {
    // Round robin over the lanes, one statement at a time, so one busy lane cannot take every slot.
    for (let idle = 0; idle < this.lanes.length && this.inFlight < this.limits.inFlightMax; ) {
      const lane = this.lanes[this.nextLane]!;
      this.nextLane = (this.nextLane + 1) % this.lanes.length;
      const group = lane.draining || lane.inFlight.length >= lane.depth ? [] : this.takeGroup(lane);
      if (group.length) {
        this.send(lane, group);
        idle = 0;
      } else {
        idle++;
      }
    }
  }

  /**
   * The lane's next group, oldest first, at most one batch per aggregate (a later batch of the
   * same one waits for the next statement, behind it). Two batches that carry the same idempotency
   * key (one key sent to two aggregates at once) never share a transaction: inside one statement
   * the second would be silently skipped instead of being seen as taken. On the pool, a batch
   * whose predecessor is still in flight waits until it has committed.
   */
  private takeGroup(lane: Lane): Pending[] {
    const group: Pending[] = [];
    const later: Pending[] = [];
    const keys = new Set<string>();
    const aggregates = new Set<string>();
    for (const p of lane.waiting) {
      const ids = p.write.keyed.map((k) => idempotencyId(k.idempotency));
      const blocked =
        group.length >= this.limits.writesMax ||
        aggregates.has(p.write.id) ||
        (p.after !== undefined && (p.after.state === "waiting" || (p.after.state === "sent" && !lane.session))) ||
        ids.some((id) => keys.has(id));
      aggregates.add(p.write.id);
      if (blocked) {
        later.push(p);
        continue;
      }
      group.push(p);
      for (const id of ids) keys.add(id);
    }
    lane.waiting = later;
    return group;
  }

  private send(lane: Lane, group: Pending[]): void {
    for (const p of group) {
      p.state = "sent";
      if (p.after?.state === "sent") this.stats.pipelined++;
    }
    this.waitingCount -= group.length;
    this.inFlight++;
    const stmt: Statement = { pendings: group, token: `${lane.index}.${++lane.tokens}` };
    const started = performance.now();
    const writes = group.map((p) => p.write);
    const answers = lane.session ? this.sendOnLane(lane, stmt, writes) : settle(this.write(this.db, writes));
    lane.inFlight.push(stmt);
    const handle = async () => {
      const settled = await answers;
      this.stats.transactions++;
      this.stats.batches += group.length;
      this.stats.busyMs += performance.now() - started;
      this.finish(lane, stmt, settled);
    };
    // On a lane, answers are handled in the order the statements were sent (a failure must be seen
    // before the statements behind it); on the pool, each as it comes.
    lane.handled = lane.session ? lane.handled.then(handle) : handle();
    lane.handled = lane.handled.catch((error) => log("error", "commit queue: a statement's answers were not handled", { error: reason(error) }));
  }

  /**
   * The statement, guarded on the one sent before it on the lane, sent now behind it on the lane's
   * connection; nothing waits for a reply. postgres.js sends a query a microtask after it is first
   * awaited, so statements go out in the order they are made: the writer must make its statement
   * before its first await (commitWrites does). One made later can only be refused by its guard.
   *
   * When the connection is lost, the driver does not always settle every query that was queued on
   * it (seen when Postgres ends a backend during a reconnect's start-up, with statements waiting).
   * So the first query on a lane that fails for a lost connection breaks the lane's client: every
   * statement in flight on it is answered with that error (fate unknown), the client is ended and
   * the lane gets a new one. A statement still out after probeMs gets a `select 1` behind it (the
   * write fails on a dead connection), and one out longer than any statement may run breaks it too.
   */
  private sendOnLane(lane: Lane, stmt: Statement, writes: BatchWrite[]): Promise<PromiseSettledResult<unknown>> {
    const client = lane.client;
    const session = lane.session!;
    const previous = lane.inFlight.at(-1);
    const written = this.write(session, writes, { expect: previous?.token, token: stmt.token });
    written.catch((error) => lostConnection(error) && this.breakLane(lane, client, error));
    return new Promise((resolve) => {
      const stalled = setTimeout(() => this.breakLane(lane, client, new StalledLaneError(`commit lane ${lane.index}: a statement out for ${this.stallMs} ms`)), this.stallMs);
      const probe = setTimeout(() => {
        if (client.waiting.has(answer) && lane.client === client) void session.unsafe("select 1").catch((error: unknown) => lostConnection(error) && this.breakLane(lane, client, error as Error));
      }, this.probeMs);
      stalled.unref?.();
      probe.unref?.();
      // Answered by the statement, or by the client breaking first; whichever comes second is dropped.
      const answer = (a: PromiseSettledResult<unknown>) => {
        if (!client.waiting.delete(answer)) return;
        clearTimeout(stalled);
        clearTimeout(probe);
        resolve(a);
      };
      client.waiting.add(answer);
      void settle(written).then(answer);
    });
  }

  /** The lane's connection is gone (or hung): what was in flight on it fails, and the lane gets a new client. */
  private breakLane(lane: Lane, client: LaneClient, error: Error): void {
    if (lane.client !== client) return;
    // Nothing more goes out until what was in flight on the old client has been answered.
    lane.draining = lane.inFlight.length > 0;
    for (const answer of [...client.waiting]) answer({ status: "rejected", reason: error });
    const old = lane.session!;
    lane.client = newClient();
    lane.session = this.openLane!(lane.index);
    void old.end({ timeout: 0 }).catch(() => {});
    log("warn", "commit lane reconnected", { lane: lane.index, error: reason(error) });
  }

  private finish(lane: Lane, stmt: Statement, written: PromiseSettledResult<unknown>): void {
    this.inFlight--;
    lane.inFlight.splice(lane.inFlight.indexOf(stmt), 1);
    if (written.status === "rejected" && (written.reason as { code?: string } | null)?.code === LANE_OUT_OF_STEP) {
      // The guard refused: the statement before this one on the lane did not commit (or the
      // connection is not the one it went on), so this one wrote nothing. Batches that depended on
      // a failed batch fail; the others go again.
      this.troubled(lane);
      for (const p of stmt.pendings) {
        if (p.after?.state === "failed") this.fail(p, new PredecessorFailedError(`${p.write.id}: the batch before this one did not commit`));
        else this.sendAgain(lane, p);
      }
      this.requeue(lane);
    } else if (written.status === "rejected") {
      // The database failed (or the commit's fate is unknown): every batch in it must be treated
      // as not acknowledged. The actors reload and their callers may retry with the same keys.
      this.troubled(lane);
      for (const p of stmt.pendings) this.fail(p, written.reason as Error);
    } else {
      const report = (written as PromiseFulfilledResult<Awaited<ReturnType<typeof commitWrites>>>).value;
      if (report.ok) {
        for (const p of stmt.pendings) {
          p.state = "committed";
          p.resolve(report.versions.get(p.write.id)!);
        }
      } else {
        // Nothing was written. The fenced and the taken are answered; the rest go again.
        this.troubled(lane);
        for (const p of stmt.pendings) {
          const id = p.write.id;
          if (report.fenced.has(id)) this.fail(p, new FencedError(id, p.write.fromVersion));
          else if (report.taken.has(id)) this.fail(p, new KeysTakenError(report.taken.get(id)!));
          else this.sendAgain(lane, p);
        }
        this.requeue(lane);
      }
    }
    if (lane.draining && !lane.inFlight.length) {
      // Quiet again: what must go again goes first, in the order it was first sent.
      lane.draining = false;
      lane.waiting = [...lane.again, ...lane.waiting];
      lane.again = [];
    }
    this.pump();
  }

  /** A statement on the lane failed: on a lane with its own connection, stop sending until the ones behind it are back. */
  private troubled(lane: Lane): void {
    if (lane.session) lane.draining = true;
  }

  private sendAgain(lane: Lane, p: Pending): void {
    if (++p.resends > RESENDS_MAX) {
      this.fail(p, new CommitRefusedError(`${p.write.id}: sent ${RESENDS_MAX} times, each time behind a failed statement`));
      return;
    }
    this.stats.resent++;
    p.state = "waiting";
    this.waitingCount++;
    lane.again.push(p);
  }

  /** On the pool (nothing to drain), what goes again goes first, now. */
  private requeue(lane: Lane): void {
    if (lane.draining || !lane.again.length) return;
    lane.waiting = [...lane.again, ...lane.waiting];
    lane.again = [];
  }

  /** A batch will not commit: it is answered, and so is every batch waiting behind it (they were computed on top of it). */
  private fail(p: Pending, error: Error): void {
    const wasWaiting = p.state === "waiting";
    p.state = "failed";
    p.reject(error);
    if (wasWaiting) {
      this.waitingCount--;
      remove(p.lane.waiting, p) || remove(p.lane.again, p);
    }
    // Those already sent fail their guard and are answered when their statement comes back.
    for (const q of p.behind) if (q.state === "waiting") this.fail(q, new PredecessorFailedError(`${q.write.id}: the batch before this one did not commit`));
  }
}

function newLane(index: number, session: Db | undefined, depth: number): Lane {
  return { index, session, client: newClient(), depth, waiting: [], again: [], inFlight: [], draining: false, tokens: 0, handled: Promise.resolve() };
}

/**
 * One connection's life on a lane: how to answer each statement still out on it, if it breaks.
 * (Not a promise raced against every statement: a promise that never settles keeps every race's
 * answer reachable, and a lane that never breaks would keep every statement's.)
 */
interface LaneClient {
  waiting: Set<(answer: PromiseSettledResult<unknown>) => void>;
}

function newClient(): LaneClient {
  return { waiting: new Set() };
}

function settle<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  return p.then(
    (value) => ({ status: "fulfilled", value }),
    (reason: unknown) => ({ status: "rejected", reason }),
  );
}

/** A lane statement was out longer than a statement may run (statement_timeout and then some): the lane's client is replaced. */
export class StalledLaneError extends Error {
  readonly code = "CONNECTION_DESTROYED";
}

/**
 * The connection under a query is gone: a driver or socket failure, or a FATAL from Postgres
 * (57P01 when a backend is terminated). An ERROR (a statement refused, timed out, cancelled)
 * leaves the connection usable.
 */
function lostConnection(error: unknown): boolean {
  const e = error as { name?: string; severity?: string } | null;
  if (e?.name === "PostgresError") return e.severity === "FATAL" || e.severity === "PANIC";
  return databaseFailure(error) === "unavailable";
}

function rejected(error: Error): CommitTicket {
  const done = Promise.reject(error);
  done.catch(() => {});
  return { done, state: "failed" } as unknown as CommitTicket;
}

function remove(list: Pending[], p: Pending): boolean {
  const i = list.indexOf(p);
  if (i >= 0) list.splice(i, 1);
  return i >= 0;
}

/**
 * A commit lane's connection: the pool's settings (lib/db.ts) on a client of exactly one
 * connection, so every statement runs in the order it was sent and the lane's session setting
 * (`coffer.lane`) is its own. A lane is every commit of its wallets: a start-up that Postgres ended
 * half way (seen under chaos) must free it sooner than the pool's 2 s; a local connect takes
 * milliseconds.
 */
export function connectCommitLane(url: string, timeouts = { statement_ms: 30_000, lock_ms: 5_000 }): Db {
  return connect(url, 1, timeouts, 1);
}
