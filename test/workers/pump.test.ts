import { expect, test } from "bun:test";
import { Pump } from "../../src/workers/pump";

/** A pump that never polls on its own during a test: only kicks (and retry timers) move it. */
const NEVER_MS = 3_600_000;

/** Resolves once `pump` has finished the round in hand (bounded; the round is a few microtasks). */
async function roundEnds(pump: Pump): Promise<void> {
  for (let turn = 0; turn < 1_000 && pump.busy; turn++) await new Promise((resolve) => setImmediate(resolve));
  expect(pump.busy).toBe(false);
}

test("a round runs at most passesMax passes back to back, even when every pass says there is more; the next kick goes on", async () => {
  let passes = 0;
  const pump = new Pump("test", async () => (passes++, true), NEVER_MS, { passesMax: 5 });
  pump.kick();
  await roundEnds(pump);
  expect(passes).toBe(5);
  pump.kick();
  await roundEnds(pump);
  expect(passes).toBe(10);
  await pump.stop();
});

test("a failing pass is retried after a backoff that doubles with each failure in a row; kicks meanwhile are ignored", async () => {
  const at: number[] = [];
  let failuresLeft = 3;
  const pump = new Pump(
    "test",
    async () => {
      at.push(performance.now());
      if (failuresLeft-- > 0) throw new Error("database gone");
      return false;
    },
    NEVER_MS,
    { retryBaseMs: 40, retryMaxMs: 1_000 },
  );
  pump.kick();
  await roundEnds(pump);
  for (let i = 0; i < 10; i++) pump.kick(); // inside the backoff: nothing runs
  expect(at.length).toBe(1);
  expect(await pump.until(async () => at.length === 4, 2_000)).toBe(true);
  const gaps = at.slice(1).map((t, i) => t - at[i]!);
  // 40 ms, 80 ms, 160 ms (timers fire a little late, never early by more than a hair).
  expect(gaps.map((g, i) => g >= 40 * 2 ** i - 5)).toEqual([true, true, true]);
  // After a success the next kick runs at once.
  pump.kick();
  await roundEnds(pump);
  expect(at.length).toBe(5);
  await pump.stop();
});

test("stop waits for the pass in hand, but no longer than stopWaitMs", async () => {
  let release!: () => void;
  const pump = new Pump("test", () => new Promise<boolean>((resolve) => (release = () => resolve(false))), NEVER_MS, { stopWaitMs: 50 });
  pump.kick();
  const started = performance.now();
  await pump.stop();
  expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  expect(pump.busy).toBe(true);
  release();
  await roundEnds(pump);
});

test("with kickGapMs, kicks during a pass coalesce into one pass at least the gap after it started; a pass with more left goes on at once", async () => {
  const at: number[] = [];
  let release!: () => void;
  let more = 0;
  /** Resolves when the pass with this number has started. */
  const waiting: { n: number; resolve: () => void }[] = [];
  const passStarts = (n: number) => new Promise<void>((resolve) => (at.length >= n ? resolve() : waiting.push({ n, resolve })));
  const pump = new Pump(
    "test",
    () => {
      at.push(performance.now());
      for (const w of waiting.filter((w) => w.n <= at.length)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
      if (at.length === 1) return new Promise<boolean>((resolve) => (release = () => resolve(false)));
      return Promise.resolve(more > 0 && more-- > 1);
    },
    NEVER_MS,
    { kickGapMs: 60 },
  );
  pump.kick();
  for (let i = 0; i < 20; i++) pump.kick(); // during the first pass: one more pass, not twenty
  release();
  await roundEnds(pump);
  expect(at.length).toBe(1); // the second waits for the gap, on a timer of its own
  await passStarts(2);
  expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(55);
  await roundEnds(pump);
  expect(at.length).toBe(2);
  // Passes that say there is more go on without a gap (a kick first waits out the gap after pass 2).
  more = 3;
  pump.kick();
  await passStarts(5);
  await roundEnds(pump);
  expect(at.length).toBe(5);
  expect(at[4]! - at[2]!).toBeLessThan(50);
  await pump.stop();
});
