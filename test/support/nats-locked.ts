import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./process";
import { testDir } from "./temp";

/**
 * A NATS server locked exactly as production runs it: `nats-server -c deploy/nats/coffer.conf` on a
 * free port, with JetStream in a temp dir and fresh random passwords for the node user and the
 * example API caller. One per test file (beforeAll / afterAll); `stop()` kills it and removes the dir.
 */
export interface LockedNats {
  url: string;
  node: { user: string; pass: string };
  caller: { user: string; pass: string; inboxPrefix: string };
  stop(): Promise<void>;
}

const ROOT = new URL("../..", import.meta.url).pathname;
export const LOCKED_CONFIG = join(ROOT, "deploy/nats/coffer.conf");
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_KEEP_CHARS = 20_000;

function natsServerPath(): string {
  const found = Bun.which("nats-server") ?? ["/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      "nats-server is not installed: the bus-permission tests start a locked NATS server themselves " +
        "(`apt-get install nats-server`, or a release from https://github.com/nats-io/nats-server/releases, on PATH)",
    );
  }
  return found;
}

/**
 * A password the config's variable substitution reads back unchanged: it must start with a letter
 * (`1e5…` would be read as a number) and hold only letters and digits.
 */
function randomPassword(): string {
  return `p${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("hex")}`;
}

export async function startLockedNats(): Promise<LockedNats> {
  const binary = natsServerPath();
  const storeDir = testDir("nats-locked");
  const port = freePort();
  const node = { user: "coffer-node", pass: randomPassword() };
  const caller = { user: "coffer-api", pass: randomPassword(), inboxPrefix: "_INBOX_coffer-api" };
  const proc = Bun.spawn([binary, "-c", LOCKED_CONFIG, "-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], {
    env: { ...process.env, COFFER_NATS_NODE_PASSWORD: node.pass, COFFER_NATS_API_PASSWORD: caller.pass },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });

  // The server says "Server is ready" once it accepts clients: await that line (bounded), not a sleep.
  let output = "";
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      output = (output + decoder.decode(chunk, { stream: true })).slice(-OUTPUT_KEEP_CHARS);
      if (output.includes("Server is ready")) markReady();
    }
  };
  void keep(proc.stdout).catch(() => {});
  void keep(proc.stderr).catch(() => {});

  const removeDir = () => rmSync(storeDir, { recursive: true, force: true });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await proc.exited;
      clearTimeout(timer);
    }
    removeDir();
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    proc.exited.then(() => "exited" as const),
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    await stop();
    const why = outcome === "exited" ? `exited (${proc.exitCode ?? proc.signalCode})` : `not ready after ${READY_TIMEOUT_MS} ms`;
    throw new Error(`locked nats-server (${LOCKED_CONFIG}) ${why}:\n${output}`);
  }
  return { url: `nats://127.0.0.1:${port}`, node, caller, stop };
}
