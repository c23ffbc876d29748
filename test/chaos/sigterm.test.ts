import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { freePort, startService } from "../support/process";

/**
 * SIGTERM always ends a node within a bounded time, even when its NATS server has stopped
 * answering mid-flight (frozen with SIGSTOP: connections stay open, nothing comes back), which used
 * to leave the shutdown waiting on a drain for ever.
 */
const SHUTDOWN_TIMEOUT_MS = 2_000;

let db: TestDatabase;
let nats: Subprocess;
let natsDir: string;
let natsUrl: string;

beforeAll(async () => {
  db = await createTestDatabase("sigterm");
  natsDir = await mkdtemp(join(tmpdir(), "coffer-nats-"));
  const port = freePort();
  natsUrl = `nats://127.0.0.1:${port}`;
  nats = Bun.spawn(["nats-server", "-a", "127.0.0.1", "-p", String(port), "-js", "-sd", natsDir], { stdout: "ignore", stderr: "ignore" });
  // nats-server has no readiness event to await: poll its port, bounded.
  for (let i = 0; i < 100; i++) {
    try {
      (await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).end();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error("nats-server did not start");
});

afterAll(async () => {
  nats.kill("SIGCONT");
  nats.kill("SIGKILL");
  await nats.exited;
  await rm(natsDir, { recursive: true, force: true });
  await db.drop();
});

test("a node whose NATS server froze still exits on SIGTERM within its shutdown timeout", async () => {
  const service = await startService(db.url, {
    NATS_URL: natsUrl,
    NATS_SUBJECT_PREFIX: "cofferterm",
    NODE_ID: "term",
    LEASE_TTL_MS: "2000",
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  });
  nats.kill("SIGSTOP");
  const started = Date.now();
  service.proc.kill("SIGTERM");
  const exited = await Promise.race([service.proc.exited.then(() => true), Bun.sleep(SHUTDOWN_TIMEOUT_MS + 5_000).then(() => false)]);
  const tookMs = Date.now() - started;
  if (!exited) await service.kill();
  expect(exited).toBe(true);
  expect(tookMs).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + 5_000);
  expect(service.proc.signalCode).toBeNull();
});
