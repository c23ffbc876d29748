import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { startNatsServer, type NatsServer } from "../support/nats";
import { freePort, startService } from "../support/process";

/**
 * SIGTERM always ends a node within a bounded time, even when its NATS server has stopped
 * answering mid-flight (frozen with SIGSTOP: connections stay open, nothing comes back), which used
 * to leave the shutdown waiting on a drain for ever.
 */
const SHUTDOWN_TIMEOUT_MS = 2_000;

let db: TestDatabase;
let nats: NatsServer;
let natsDir: string;

beforeAll(async () => {
  db = await createTestDatabase("sigterm");
  natsDir = await mkdtemp(join(tmpdir(), "coffer-nats-"));
  nats = await startNatsServer(freePort(), natsDir);
});

afterAll(async () => {
  nats?.proc.kill("SIGCONT");
  await nats?.kill();
  await rm(natsDir, { recursive: true, force: true });
  await db.drop();
});

test("a node whose NATS server froze still exits on SIGTERM within its shutdown timeout", async () => {
  const service = await startService(db.url, {
    NATS_URL: nats.url,
    NATS_SUBJECT_PREFIX: "cofferterm",
    NODE_ID: "term",
    LEASE_TTL_MS: "2000",
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  });
  nats.proc.kill("SIGSTOP");
  const started = Date.now();
  service.proc.kill("SIGTERM");
  const exited = await Promise.race([service.proc.exited.then(() => true), Bun.sleep(SHUTDOWN_TIMEOUT_MS + 5_000).then(() => false)]);
  const tookMs = Date.now() - started;
  if (!exited) await service.kill();
  expect(exited).toBe(true);
  expect(tookMs).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + 5_000);
  expect(service.proc.signalCode).toBeNull();
});
