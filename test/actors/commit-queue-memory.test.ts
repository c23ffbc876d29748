import { expect, test } from "bun:test";
import { CommitQueue } from "../../actors/commit-queue";
import { walletRows } from "../../actors/wallet-store";
import type { AggregateWrite as BatchWrite, CommitReport } from "../../actors/write-path";
import type { Db, Queryable } from "../../lib/db";

/**
 * What the queue keeps once a commit has been answered: nothing. A node that served a command
 * for each of 100,000 wallets and passivated them all must be back where it started
 * (test/bench/footprint.ts, memory); what each statement answered (the driver's results, the
 * writer's report with every wallet id of the group) belongs to that statement alone.
 */
function batch(id: string): BatchWrite {
  return {
    id,
    kind: walletRows,
    fromVersion: 1,
    snapshot: {} as BatchWrite["snapshot"],
    at: "2026-01-01T00:00:00.000Z",
    effects: [],
    keyed: [{ idempotency: { scope: "s", key: `k-${id}`, fingerprint: "f" }, outcome: { status: 409, body: {} } }],
  };
}

/** A lane's connection that answers every query at once (guard, commit), as a healthy one does. */
function answeringSession(): Db {
  const query = (text: string) => {
    const p = Promise.resolve(text === "rollback" ? { command: "ROLLBACK" } : { command: text.startsWith("begin") ? "SELECT" : "COMMIT" });
    return Object.assign(p, { execute: () => p });
  };
  const session = (strings: TemplateStringsArray) => query(strings.join("$"));
  return Object.assign(session, { unsafe: query, end: async () => {} }) as unknown as Db;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("on a lane, nothing a committed statement answered stays reachable from the queue once its batches are answered", async () => {
  const reports: WeakRef<CommitReport>[] = [];
  const write = async (db: Queryable, writes: BatchWrite[]): Promise<CommitReport> => {
    await db`select 1`; // the writer's statement, made before its first await (as commitWrites does)
    const report: CommitReport = { ok: true, versions: new Map(writes.map((w) => [w.id, 2])), fenced: new Set(), taken: new Map() };
    reports.push(new WeakRef(report));
    return report;
  };
  const queue = new CommitQueue({} as Db, { inFlightMax: 2, writesMax: 8, waitingMax: 10_000, lanes: 1, depth: 2 }, write, () => answeringSession());
  for (let i = 0; i < 200; i++) {
    const tickets = Array.from({ length: 4 }, (_, j) => queue.commit(batch(`w-${i}-${j}`)));
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
  // The first connection: the guard goes out, the writer's statements are failed by hand, and the
  // commits are never answered (as the driver leaves queries queued on a lost connection).
  const writerStatements: ((error: Error) => void)[] = [];
  const lost = (): Db => {
    const query = (text: string) => {
      const p = text.startsWith("begin") ? Promise.resolve({ command: "SELECT" }) : new Promise<never>(() => {});
      return Object.assign(p, { execute: () => p });
    };
    const session = () => {
      const p = new Promise<never>((_, reject) => writerStatements.push(reject));
      p.catch(() => {});
      return Object.assign(p, { execute: () => p });
    };
    return Object.assign(session, { unsafe: query, end: async () => {} }) as unknown as Db;
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
  const a = queue.commit(batch("a"));
  const b = queue.commit(batch("b"));
  expect(writerStatements.length).toBe(2); // both out on the first connection, one behind the other
  writerStatements[0]!(Object.assign(new Error("connection closed"), { code: "CONNECTION_CLOSED" }));
  await expect(a).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
  await expect(b).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
  expect(opened).toEqual([0, 0]);
  expect(await queue.commit(batch("c"))).toBe(2);
  expect(queue.load).toEqual({ inFlight: 0, waiting: 0 });
  await queue.close();
});
