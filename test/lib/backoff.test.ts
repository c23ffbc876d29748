import { expect, test } from "bun:test";
import { Backoff, delayMs } from "../../lib/backoff";

test("the delay doubles from baseMs with each failure in a row and stops at maxMs", () => {
  expect([1, 2, 3, 4, 5, 6, 100].map((n) => delayMs(n, 100, 1_000))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
});

test("a failed item waits out its delay, a success forgets it, and only so many items are remembered", () => {
  const backoff = new Backoff({ baseMs: 100, maxMs: 1_000, itemsMax: 2 });
  expect(backoff.failed("a", 0)).toEqual({ attempts: 1, retryInMs: 100 });
  expect(backoff.failed("a", 100)).toEqual({ attempts: 2, retryInMs: 200 });
  expect({ soon: backoff.due("a", 299), then: backoff.due("a", 300), other: backoff.due("b", 0) }).toEqual({ soon: false, then: true, other: true });
  expect(backoff.waiting(250)).toEqual(["a"]);
  backoff.succeeded("a");
  expect(backoff.due("a", 0)).toBe(true);

  backoff.failed("x", 0);
  backoff.failed("y", 0);
  backoff.failed("z", 0); // x, the least recently failed, is forgotten: it is simply retried sooner
  expect({ size: backoff.size, waiting: backoff.waiting(0) }).toEqual({ size: 2, waiting: ["y", "z"] });
});
