import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Db } from "../../lib/db";
import { databaseFailure } from "../../lib/db-errors";
import { loadWallet } from "../../actors/wallet-store";
import { ReadOutOfStepError } from "../../actors/store-errors";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * A wallet's row read back absent while it exists (seen once in a few hundred chaos runs with
 * Postgres ending the pool's connections) must never load as an unopened wallet: that answers
 * WALLET_NOT_FOUND, and a transfer credited to it is voided. The loader asks again; if the row is
 * there, the load fails as the database being unavailable (503, retried with the same key).
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("readoutofstep");
});
afterAll(async () => {
  await t?.stop();
});

/** The node's pool, except that its first query answers no rows (what the driver handed back once). */
function firstAnswerEmpty(db: Db): Db {
  let first = true;
  return new Proxy(db, {
    apply(target, self, args) {
      if (first) {
        first = false;
        return Promise.resolve([]);
      }
      return Reflect.apply(target as never, self, args);
    },
  });
}

test("an existing wallet read back absent is not an unopened wallet: the load fails as unavailable", async () => {
  const wallet = await fundedWallet(t.api, "USD", "10");
  const error = await loadWallet(firstAnswerEmpty(t.node.db), wallet).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ReadOutOfStepError);
  expect(databaseFailure(error)).toBe("unavailable");
  // Read normally, it loads as the active wallet it is.
  const loaded = await loadWallet(t.node.db, wallet);
  expect(loaded.snapshot.value).toBe("active");
  expect(loaded.version).toBeGreaterThan(0);
});

test("an id with no row at all still loads as unopened (creation and the stranger's 404 work as before)", async () => {
  const loaded = await loadWallet(firstAnswerEmpty(t.node.db), crypto.randomUUID());
  expect(loaded.snapshot.value).toBe("unopened");
  expect(loaded.version).toBe(0);
});
