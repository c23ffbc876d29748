import { expect, test } from "bun:test";
import { CommitQueue, PredecessorFailedError } from "../../actors/commit-queue";
import { walletRows } from "../../actors/wallet-store";
import { LANE_OUT_OF_STEP, type AggregateWrite as BatchWrite, type CommitReport, type LaneGuard } from "../../actors/write-path";
import { CommitRefusedError, FencedError } from "../../actors/store-errors";
import type { Db, Queryable } from "../../lib/db";

/**
 * How the queue groups wallet batches into transactions. The writer here only records the groups
 * and finishes when told to, so the order of events is exact; the SQL itself is exercised by every
 * HTTP suite against Postgres.
 */
function batch(id: string, ...keys: string[]): BatchWrite {
  return {
    id,
    kind: walletRows,
    fromVersion: 1,
    snapshot: {} as BatchWrite["snapshot"],
    at: "2026-01-01T00:00:00.000Z",
    effects: [],
    keyed: keys.map((key) => ({ idempotency: { scope: "s", key, fingerprint: key }, outcome: { status: 201, body: {} } })),
  };
}

/** The queue starts the next group right after a commit settles; one turn of the event loop lets it. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function recordingWriter() {
  const groups: string[][] = [];
  const release: (() => void)[] = [];
  const write = (_db: Queryable, writes: BatchWrite[]) =>
    new Promise<CommitReport>((resolve) => {
      groups.push(writes.map((w) => w.id));
      release.push(() => resolve({ ok: true, versions: new Map(writes.map((w) => [w.id, 2])), fenced: new Set(), taken: new Map() }));
    });
  return { groups, release, write };
}

test("batches that wait while a commit is out go out together in the next transaction", async () => {
  const w = recordingWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 1, writesMax: 100, waitingMax: 100 }, w.write);
  const done = ["a", "b", "c", "d"].map((id) => queue.commit(batch(id, `k-${id}`)));
  expect(w.groups).toEqual([["a"]]);
  w.release.shift()!();
  await done[0];
  await nextTurn();
  expect(w.groups).toEqual([["a"], ["b", "c", "d"]]);
  w.release.shift()!();
  expect(await Promise.all(done)).toEqual([2, 2, 2, 2]);
});

test("two batches carrying the same idempotency key never share a transaction", async () => {
  const w = recordingWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 1, writesMax: 100, waitingMax: 100 }, w.write);
  const first = queue.commit(batch("x", "other"));
  const rest = [queue.commit(batch("a", "shared")), queue.commit(batch("b", "shared")), queue.commit(batch("c", "own"))];
  w.release.shift()!();
  await first;
  await nextTurn();
  expect(w.groups[1]).toEqual(["a", "c"]);
  w.release.shift()!();
  await rest[0];
  await nextTurn();
  expect(w.groups[2]).toEqual(["b"]);
  w.release.shift()!();
  await Promise.all(rest);
});

test("a group never holds more than writesMax batches", async () => {
  const w = recordingWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 1, writesMax: 2, waitingMax: 100 }, w.write);
  const all = ["p", "q", "r", "s", "t"].map((id) => queue.commit(batch(id)));
  for (let i = 0; i < 3; i++) {
    w.release.shift()!();
    await all[i === 0 ? 0 : i * 2];
    await nextTurn();
  }
  expect(w.groups).toEqual([["p"], ["q", "r"], ["s", "t"]]);
  await Promise.all(all);
});

test("past waitingMax a batch is refused at once with CommitRefusedError and never written; the waiting ones still commit", async () => {
  const w = recordingWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 1, writesMax: 100, waitingMax: 2 }, w.write);
  const inFlight = queue.commit(batch("a"));
  const waiting = [queue.commit(batch("b")), queue.commit(batch("c"))];
  await expect(queue.commit(batch("d"))).rejects.toBeInstanceOf(CommitRefusedError);
  expect(queue.stats.refused).toBe(1);
  w.release.shift()!();
  await inFlight;
  await nextTurn();
  w.release.shift()!();
  expect(await Promise.all(waiting)).toEqual([2, 2]);
  expect(w.groups).toEqual([["a"], ["b", "c"]]);
  await nextTurn();
  // With room again, the next batch is taken.
  const later = queue.commit(batch("d"));
  w.release.shift()!();
  expect(await later).toBe(2);
});

/** A writer whose every commit the test settles: `answer(i, report | error)`. */
function controlledWriter() {
  const calls: { ids: string[]; lane: LaneGuard | undefined; settle: (r: CommitReport | Error) => void }[] = [];
  const write = (_db: Queryable, writes: BatchWrite[], lane?: LaneGuard) =>
    new Promise<CommitReport>((resolve, reject) => {
      calls.push({ ids: writes.map((w) => w.id), lane, settle: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
    });
  const ok = (ids: string[], version = 2): CommitReport => ({ ok: true, versions: new Map(ids.map((id) => [id, version])), fenced: new Set(), taken: new Map() });
  const fenced = (id: string): CommitReport => ({ ok: false, versions: new Map(), fenced: new Set([id]), taken: new Map() });
  return { calls, write, ok, fenced };
}

test("on the pool, a batch handed over behind another waits until that one committed, then goes", async () => {
  const w = controlledWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 2, writesMax: 100, waitingMax: 100 }, w.write);
  const first = queue.commitBehind(batch("a", "k1"), undefined);
  const second = queue.commitBehind({ ...batch("a", "k2"), fromVersion: 2 }, first);
  expect(w.calls.map((c) => c.ids)).toEqual([["a"]]);
  w.calls[0]!.settle(w.ok(["a"]));
  expect(await first.done).toBe(2);
  await nextTurn();
  expect(w.calls.map((c) => c.ids)).toEqual([["a"], ["a"]]);
  w.calls[1]!.settle(w.ok(["a"], 3));
  expect(await second.done).toBe(3);
});

test("a batch behind one that failed is never written: it fails with PredecessorFailedError, and so does one handed over later", async () => {
  const w = controlledWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 2, writesMax: 100, waitingMax: 100 }, w.write);
  const first = queue.commitBehind(batch("a", "k1"), undefined);
  const second = queue.commitBehind({ ...batch("a", "k2"), fromVersion: 2 }, first);
  w.calls[0]!.settle(w.fenced("a"));
  await expect(first.done).rejects.toBeInstanceOf(FencedError);
  await expect(second.done).rejects.toBeInstanceOf(PredecessorFailedError);
  await expect(queue.commitBehind({ ...batch("a", "k3"), fromVersion: 3 }, second).done).rejects.toBeInstanceOf(PredecessorFailedError);
  await nextTurn();
  expect(w.calls.length).toBe(1);
  expect(queue.load).toEqual({ inFlight: 0, waiting: 0 });
});

/** A lane's connection; the writer (controlledWriter) stands in for what it answers. */
const fakeSession = () => Object.assign(() => {}, { end: async () => {} }) as unknown as Db;

/** What Postgres answers a lane statement whose guard found the lane out of step (migration 031). */
const outOfStep = () => Object.assign(new Error("commit lane out of step"), { name: "PostgresError", code: LANE_OUT_OF_STEP, severity: "ERROR" });

test("on a lane, a batch behind another goes out before that one's answer, guarded on the token of the statement before it; when a statement fails, the one behind it fails its guard, and a batch that waited goes once the lane is quiet", async () => {
  const w = controlledWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 4, writesMax: 100, waitingMax: 100, lanes: 1, depth: 2 }, w.write, fakeSession);
  const a1 = queue.commitBehind(batch("a", "k1"), undefined);
  const a2 = queue.commitBehind({ ...batch("a", "k2"), fromVersion: 2 }, a1);
  await nextTurn();
  expect(w.calls.map((c) => c.ids)).toEqual([["a"], ["a"]]);
  // Each statement is guarded on the token of the one sent before it on the lane.
  expect(w.calls.map((c) => c.lane)).toEqual([{ expect: undefined, token: "0.1" }, { expect: "0.1", token: "0.2" }]);
  expect(queue.stats.pipelined).toBe(1);
  const b = queue.commitBehind(batch("b", "k3"), undefined);
  expect(w.calls.length).toBe(2); // the lane is two deep
  // a1 is fenced, so a2's guard finds the lane out of step: a2 fails; b goes once the lane is quiet.
  w.calls[0]!.settle(w.fenced("a"));
  w.calls[1]!.settle(outOfStep());
  await expect(a1.done).rejects.toBeInstanceOf(FencedError);
  await expect(a2.done).rejects.toBeInstanceOf(PredecessorFailedError);
  await nextTurn();
  expect(w.calls.map((c) => c.ids)).toEqual([["a"], ["a"], ["b"]]);
  // Nothing was in flight when b went: it expects nothing (the lane's setting is whatever a1 left).
  expect(w.calls[2]!.lane).toEqual({ expect: undefined, token: "0.3" });
  w.calls[2]!.settle(w.ok(["b"]));
  expect(await b.done).toBe(2);
  expect(queue.load).toEqual({ inFlight: 0, waiting: 0 });
});

test("on a lane, a statement that fails only because the one before it did is sent again, once the lane is quiet", async () => {
  const w = controlledWriter();
  const queue = new CommitQueue({} as Db, { inFlightMax: 4, writesMax: 1, waitingMax: 100, lanes: 1, depth: 2 }, w.write, fakeSession);
  const a = queue.commitBehind(batch("a", "k1"), undefined);
  const c = queue.commitBehind(batch("c", "k2"), undefined);
  await nextTurn();
  expect(w.calls.map((x) => x.ids)).toEqual([["a"], ["c"]]);
  w.calls[0]!.settle(w.fenced("a"));
  w.calls[1]!.settle(outOfStep());
  await expect(a.done).rejects.toBeInstanceOf(FencedError);
  await nextTurn();
  expect(w.calls.map((x) => x.ids)).toEqual([["a"], ["c"], ["c"]]);
  expect(queue.stats.resent).toBe(1);
  w.calls[2]!.settle(w.ok(["c"]));
  expect(await c.done).toBe(2);
});

test("on a lane whose connection died unnoticed (statements never answered), a probe sent behind them finds it and the lane is replaced", async () => {
  const w = controlledWriter();
  const probes: string[] = [];
  // The first connection: the writer's statements are never answered, and a probe's write fails as on a dead socket.
  const dead = Object.assign(() => {}, {
    unsafe: (text: string) => {
      probes.push(text);
      return Promise.reject(Object.assign(new Error("write ECONNRESET"), { code: "ECONNRESET" }));
    },
    end: async () => {},
  }) as unknown as Db;
  const opened: Db[] = [];
  const queue = new CommitQueue({} as Db, { inFlightMax: 4, writesMax: 100, waitingMax: 100, lanes: 1, depth: 2 }, w.write, () => (opened.push(opened.length ? fakeSession() : dead), opened.at(-1)!), 40_000, 20);
  const a = queue.commit(batch("a", "k1"));
  // Nothing answers a's statement; the probe does, with the lost connection: a hears it, and the lane opens anew.
  await expect(a).rejects.toMatchObject({ code: "ECONNRESET" });
  expect(probes).toEqual(["select 1"]);
  expect(opened.length).toBe(2);
  const b = queue.commit(batch("b", "k2"));
  await nextTurn();
  w.calls.at(-1)!.settle(w.ok(["b"]));
  expect(await b).toBe(2);
  expect(queue.load).toEqual({ inFlight: 0, waiting: 0 });
});

test("on a healthy lane a probe is only a query behind a slow statement: the statement's own answer counts", async () => {
  const w = controlledWriter();
  const probes: string[] = [];
  let probed!: () => void;
  const probeSent = new Promise<void>((resolve) => (probed = resolve));
  const healthy = Object.assign(() => {}, { unsafe: (text: string) => (probes.push(text), probed(), Promise.resolve([])), end: async () => {} }) as unknown as Db;
  const queue = new CommitQueue({} as Db, { inFlightMax: 4, writesMax: 100, waitingMax: 100, lanes: 1, depth: 2 }, w.write, () => healthy, 40_000, 10);
  const a = queue.commit(batch("a", "k1"));
  await probeSent;
  expect(probes).toEqual(["select 1"]);
  w.calls[0]!.settle(w.ok(["a"]));
  expect(await a).toBe(2);
});

/** A lane's connection whose every query answers at once, as a healthy one does. */
function answeringSession(): Db {
  const query = () => {
    const p = Promise.resolve([]);
    return Object.assign(p, { execute: () => p });
  };
  return Object.assign(query, { unsafe: query, end: async () => {} }) as unknown as Db;
}

test("on a lane, nothing a committed statement answered stays reachable from the queue once its batches are answered (100,000 passivated wallets must leave nothing behind)", async () => {
  const reports: WeakRef<CommitReport>[] = [];
  const write = async (db: Queryable, writes: BatchWrite[]): Promise<CommitReport> => {
    await db`select 1`; // the writer's statement, made before its first await (as commitWrites does)
    const report: CommitReport = { ok: true, versions: new Map(writes.map((w) => [w.id, 2])), fenced: new Set(), taken: new Map() };
    reports.push(new WeakRef(report));
    return report;
  };
  const queue = new CommitQueue({} as Db, { inFlightMax: 2, writesMax: 8, waitingMax: 10_000, lanes: 1, depth: 2 }, write, answeringSession);
  for (let i = 0; i < 200; i++) {
    const tickets = Array.from({ length: 4 }, (_, j) => queue.commit(batch(`w-${i}-${j}`, `k-${i}-${j}`)));
    expect(await Promise.all(tickets)).toEqual([2, 2, 2, 2]);
  }
  const statements = reports.length;
  expect(statements).toBeGreaterThanOrEqual(200);
  expect(queue.load).toEqual({ inFlight: 0, waiting: 0 });
  // Weak references hold their target until the turn that made them ends; then a full collection.
  await nextTurn();
  await nextTurn();
  Bun.gc(true);
  await nextTurn();
  Bun.gc(true);
  const kept = reports.filter((r) => r.deref() !== undefined).length;
  // A conservative scan of the stack may keep one or two alive; a queue that holds on to them keeps every one.
  expect(kept).toBeLessThan(statements / 20);
  await queue.close();
});

test("on a lane whose connection is lost, every statement in flight on it is answered with that loss, and the lane goes on on a new connection", async () => {
  // The first connection: the writer's statements are failed by hand (as the driver fails one and
  // may leave the others queued, unanswered).
  const writerStatements: ((error: Error) => void)[] = [];
  const lost = (): Db => {
    const statement = () => {
      const p = new Promise<never>((_, reject) => writerStatements.push(reject));
      p.catch(() => {});
      return Object.assign(p, { execute: () => p });
    };
    return Object.assign(statement, { unsafe: () => new Promise<never>(() => {}), end: async () => {} }) as unknown as Db;
  };
  const opened: number[] = [];
  const openLane = (index: number) => {
    opened.push(index);
    return opened.length === 1 ? lost() : answeringSession();
  };
  const write = async (db: Queryable, writes: BatchWrite[]): Promise<CommitReport> => {
    await db`select 1`;
    return { ok: true, versions: new Map(writes.map((w) => [w.id, 2])), fenced: new Set(), taken: new Map() };
  };
  const queue = new CommitQueue({} as Db, { inFlightMax: 2, writesMax: 1, waitingMax: 100, lanes: 1, depth: 2 }, write, openLane);
  const a = queue.commit(batch("a", "k1"));
  const b = queue.commit(batch("b", "k2"));
  expect(writerStatements.length).toBe(2); // both out on the first connection, one behind the other
  writerStatements[0]!(Object.assign(new Error("connection closed"), { code: "CONNECTION_CLOSED" }));
  await expect(a).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
  await expect(b).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
  expect(opened).toEqual([0, 0]);
  expect(await queue.commit(batch("c", "k3"))).toBe(2);
  expect(queue.load).toEqual({ inFlight: 0, waiting: 0 });
  await queue.close();
});
