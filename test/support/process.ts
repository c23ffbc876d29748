import type { Subprocess } from "bun";
import { claimNode } from "./budget";
import { testNodeEnv } from "./node";

/**
 * The real service (`bun src/main.ts`) as a child process, for tests that kill it the hard way.
 * Its output is kept (the last part only) so a failing test can show what the service said.
 */
export interface ServiceProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  baseUrl: string;
  /** The last lines the service wrote to stdout and stderr. */
  output(): string;
  /** SIGKILL, then wait for the exit: no shutdown hook runs, nothing is flushed. */
  kill(): Promise<void>;
}

const OUTPUT_KEEP_CHARS = 20_000;
const ROOT = new URL("../..", import.meta.url).pathname;

/** A port nothing listens on right now: bind port 0, read what the kernel chose, let it go. */
export function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

export async function startService(databaseUrl: string, env: Record<string, string> = {}, health_timeout_ms = 20_000): Promise<ServiceProcess> {
  const port = freePort();
  // Counted against the suite's connection budget until it has exited, however it ends.
  const release = claimNode(`service ${env.NODE_ID ?? `on port ${port}`}`);
  let proc: Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(["bun", "src/main.ts"], {
      cwd: ROOT,
      // PUBLIC_URL "self": the node announces its own address (the owner hints clients may follow).
      env: { ...process.env, ...(await testNodeEnv(env)), ...(env.PUBLIC_URL === "self" ? { PUBLIC_URL: `http://127.0.0.1:${port}` } : {}), DATABASE_URL: databaseUrl, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
  } catch (error) {
    release();
    throw error;
  }
  void proc.exited.then(release, release);
  let output = "";
  // Drain both pipes: a child blocked on a full pipe would look like a hung service.
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output = (output + decoder.decode(chunk, { stream: true })).slice(-OUTPUT_KEEP_CHARS);
  };
  void keep(proc.stdout).catch(() => {});
  void keep(proc.stderr).catch(() => {});

  const service: ServiceProcess = {
    proc,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
  try {
    await waitForHealth(service, health_timeout_ms);
  } catch (error) {
    await service.kill();
    throw error;
  }
  return service;
}

/**
 * A subprocess has no "ready" event we can await, so this polls GET /health with a bound on
 * attempts; it gives up early when the process has already exited.
 */
async function waitForHealth(service: ServiceProcess, timeout_ms: number): Promise<void> {
  const poll_ms = 50;
  for (let attempt = 0; attempt * poll_ms < timeout_ms; attempt++) {
    if (service.proc.exitCode !== null || service.proc.signalCode !== null) {
      throw new Error(`service exited (${service.proc.exitCode ?? service.proc.signalCode}) before it was healthy:\n${service.output()}`);
    }
    try {
      const res = await fetch(`${service.baseUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(poll_ms);
  }
  throw new Error(`service not healthy after ${timeout_ms} ms:\n${service.output()}`);
}
