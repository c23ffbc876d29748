import { expect, test } from "bun:test";
import { CommitQueue } from "../../actors/commit-queue";
import type { BatchWrite, CommitReport } from "../../actors/wallet-store";
import { CommitRefusedError } from "../../actors/store-errors";
import type { Db } from "../../lib/db";

/**
 * How the queue groups wallet batches into transactions. The writer here only records the groups
 * and finishes when told to, so the order of events is exact; the SQL itself is exercised by every
 * HTTP suite against Postgres.
 */
function batch(walletId: string, ...keys: string[]): BatchWrite {
  return {
    walletId,
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
  const write = (_db: Db, writes: BatchWrite[]) =>
    new Promise<CommitReport>((resolve) => {
      groups.push(writes.map((w) => w.walletId));
      release.push(() => resolve({ ok: true, versions: new Map(writes.map((w) => [w.walletId, 2])), fenced: new Set(), taken: new Map() }));
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
