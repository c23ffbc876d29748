import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { startNode, type Node } from "../../src/node";
import { loadConfig } from "../../src/config";
import { startEmbeddedPostgres } from "../../src/db/embedded";
import { testKeys } from "../support/auth";
import {
  expectPaymentsExactlyOnce,
  expectTransfersSettledOnce,
  expectWalletBalances,
  isOk as ok,
  lastAnswer as last,
  newWalletOp,
  timedRequest,
  unexpectedFailures,
  verifyIsCleanAfterChaos,
  type Answer,
  type WalletOp as Op,
} from "../support/chaos";
import { usd } from "../support/money";
import { seeded } from "../support/random";
import { untilDefinite as retryUntilDefinite } from "../support/retry";

/**
 * The Postgres server under a node is stopped and started again (same data, same port) while 16
 * callers keep paying and transferring. Nobody touches the node: it must reconnect by itself.
 * During the outage a caller may hear 503 (retry with the same key), never 500; once every caller
 * has retried to a definite answer, each key has had exactly one effect and the books balance.
 *
 * The server is this file's own embedded Postgres (src/db/embedded.ts) in a temporary folder, so the
 * machine's shared server is never stopped. Every request has a client-side deadline and each phase
 * a bound, so a node that hangs fails this file in seconds instead of stalling the suite.
 */
const WALLETS = 5;
const FUNDING_MINOR = 100_000n; // 1,000.00 USD per wallet
const OPERATIONS = 500;
const IN_FLIGHT = 16;
/** The restart begins once this many operations were acknowledged: the load is well under way. */
const RESTART_AFTER_ACKS = 150;
/** How long the server stays down between its stop and its start. */
const OUTAGE_MS = 1_000;
/** A healthy node answers in milliseconds; past this a request counts as unanswered (and is retried). */
const REQUEST_TIMEOUT_MS = 5_000;
const RETRY_ATTEMPTS = 60;
const RETRY_PAUSE_MS = 100;
const LOAD_DEADLINE_MS = 25_000;

let home: string;
let pg: { url: string; stop: () => Promise<void> };
let node: Node;
let server: ReturnType<typeof Bun.serve>;
let sql: postgres.Sql;
let wallets: string[] = [];
const ops: Op[] = [];
/** When the server was told to stop, when it was down, and when it answered again. */
const outage = { stoppingAt: 0, stoppedAt: 0, restartedAt: 0 };

const definite = (a: Answer) => ok(a) || (a.status >= 400 && a.status < 500);
const acked = (kind: Op["kind"]) => ops.filter((o) => o.kind === kind && ok(last(o)));

/** A connection that fails while the database restarts counts as no answer: the caller asks again. */
const request = (method: "GET" | "POST", path: string, body?: unknown, key?: string): Promise<Answer> =>
  timedRequest(`http://127.0.0.1:${server.port}`, method, path, { body, key, timeoutMs: REQUEST_TIMEOUT_MS, connectionFailure: "no-answer" });

/** Send until a definite answer, with this file's bounds (see test/support/retry.ts). */
const untilDefinite = (send: () => Promise<Answer>, answers: Answer[] = []) =>
  retryUntilDefinite(send, definite, { attempts: RETRY_ATTEMPTS, pauseMs: RETRY_PAUSE_MS }, answers);

const send = (op: Op) => request("POST", op.path, op.body, op.key);

/** Stop the server (fast shutdown), leave it down a while, start it on the same folder: same data, same port. */
async function restartPostgres(): Promise<void> {
  outage.stoppingAt = Date.now();
  await pg.stop();
  outage.stoppedAt = Date.now();
  await Bun.sleep(OUTAGE_MS); // the outage itself: there is nothing to wait for but time
  pg = await startEmbeddedPostgres(home, () => {});
  outage.restartedAt = Date.now();
}

beforeAll(async () => {
  // As root the embedded server runs as the `postgres` user, which must be able to enter the folder.
  home = mkdtempSync("/tmp/coffer-pgrestart-");
  chmodSync(home, 0o755);
  pg = await startEmbeddedPostgres(home, () => {});
  const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, ENCRYPTION_KEYS_FILE: join(home, "encryption-keys.json"), RATE_LIMITS: "off", DATABASE_URL: pg.url });
  node = await startNode(config, pg.url);
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });

  wallets = await Promise.all(
    Array.from({ length: WALLETS }, async (_, i) => {
      const created = await request("POST", "/v1/wallets", { ownerId: `pgrestart-${i}`, asset: "USD" }, `pgrestart-wallet-${i}`);
      expect(created.status).toBe(201);
      const funded = await request("POST", `/v1/wallets/${created.body.id}/credits`, { amount: usd(FUNDING_MINOR) }, `pgrestart-fund-${i}`);
      expect(funded.status).toBe(201);
      return created.body.id as string;
    }),
  );

  const random = seeded(11);
  const deadline = Date.now() + LOAD_DEADLINE_MS;
  let acks = 0;
  let restart: Promise<void> | undefined;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (ops.length < OPERATIONS && Date.now() < deadline) {
        const op = newWalletOp(random, wallets, "pgrestart", ops.length);
        ops.push(op);
        if (ok(await untilDefinite(() => send(op), op.answers)) && ++acks === RESTART_AFTER_ACKS) restart = restartPostgres();
      }
    }),
  );
  await restart;
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
}, 40_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await server?.stop(true);
  await node?.close();
  await pg?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
}, 30_000);

describe("the Postgres server restarted in the middle of a load", () => {
  test("the restart happened with requests in flight, and the load went on after it", () => {
    expect(ops.length).toBe(OPERATIONS);
    expect(outage.restartedAt).toBeGreaterThan(outage.stoppedAt);
    const inFlight = ops.filter((o) => o.sentAt <= outage.stoppingAt && last(o).at > outage.stoppingAt).length;
    const answeredAfter = ops.filter((o) => ok(last(o)) && last(o).at > outage.restartedAt).length;
    const unavailable = ops.flatMap((o) => o.answers).filter((a) => a.status === 503).length;
    expect(inFlight).toBeGreaterThan(0);
    expect(answeredAfter).toBeGreaterThan(0);
    console.info(
      `postgres restart: stop took ${outage.stoppedAt - outage.stoppingAt} ms, down ${outage.restartedAt - outage.stoppedAt} ms; ` +
        `${inFlight} requests in flight at the stop, ${unavailable} answers were 503, ${answeredAfter} acknowledged after the restart`,
    );
  });

  test("no request ever answers 500: failures are 503 UNAVAILABLE (retryable) or a business refusal", () => {
    const bad = unexpectedFailures(ops.flatMap((o) => o.answers));
    expect(bad.map((a) => `${a.status} ${a.body.code} ${a.body.detail ?? ""}`)).toEqual([]);
  });

  test(`the node keeps answering: no request waits ${REQUEST_TIMEOUT_MS} ms for its answer`, () => {
    const unanswered = ops.filter((o) => o.answers.some((a) => a.status === 0));
    expect(unanswered.map((o) => `${o.kind} ${o.key}: ${o.answers.map((a) => a.status).join(",")}`)).toEqual([]);
  });

  test("every request got a definite answer by retrying with its key", () => {
    expect(ops.filter((o) => !definite(last(o))).map((o) => ({ kind: o.kind, answers: o.answers.map((a) => `${a.status} ${a.body.code}`) }))).toEqual([]);
  });

  test("every acknowledged payment is in the ledger exactly once, and nothing else is", async () => {
    await expectPaymentsExactlyOnce(sql, acked("payment").map((o) => ({ key: o.key, journalId: last(o).body.id })));
  });

  test("every acknowledged transfer exists exactly once and ends settled after the saga settles", async () => {
    expect(await node.saga.idle(10_000)).toBe(true);
    await expectTransfersSettledOnce(sql, acked("transfer").map((o) => last(o).body.id as string));
  });

  test("every balance equals the funding minus the acknowledged payments, plus and minus the settled transfers", async () => {
    await expectWalletBalances(sql, { wallets, fundingMinor: FUNDING_MINOR, payments: acked("payment"), transfers: acked("transfer"), settledOnly: false });
  });

  test("every key replays its final answer, and the verifier is clean", async () => {
    const replays: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (let i = next++; i < ops.length; i = next++) replays[i] = await untilDefinite(() => send(ops[i]!));
      }),
    );
    const differs = ops.flatMap((o, i) =>
      replays[i]!.status === last(o).status && Bun.deepEquals(replays[i]!.body, last(o).body) ? [] : [{ key: o.key, final: last(o), replay: replays[i] }],
    );
    expect(differs.slice(0, 5)).toEqual([]);
    await verifyIsCleanAfterChaos(() => request("GET", "/admin/verify"), { attempts: RETRY_ATTEMPTS, pauseMs: RETRY_PAUSE_MS, retry: (a) => !definite(a) });
  });
});
