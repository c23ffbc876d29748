import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import postgres from "postgres";

/**
 * The test suite's connection budget. The suite shares its Postgres with whatever else runs on the
 * machine (CI had other databases holding ~40 of the default 100 connections, and failed with
 * "too many clients"), so it promises itself a fixed number and keeps to it:
 *
 * - every node a test starts (in process or as a subprocess) has a pool of POOL_PER_NODE
 *   (DB_POOL_MAX; production's default is 20);
 * - a test process runs at most NODES_AT_ONCE nodes at a time (three for the cluster suites);
 *   `claimNode` counts them and refuses one more, naming the ones alive, so a test that starts too
 *   many, or forgets to stop one, fails at once instead of starving the server;
 * - a file's own clients (`postgres(url, { max: 2 })` to look at the tables) take at most
 *   FILE_CLIENTS, and creating or dropping a database, or ending backends, ADMIN;
 * - `bun test` runs one file at a time in one process (Bun 1.4 without --parallel; checked below).
 *
 * test/support/setup.ts prints the budget at start and stops the run when the server has fewer
 * free connections than it needs.
 */
export const POOL_PER_NODE = 10;
export const NODES_AT_ONCE = 3;
export const FILE_CLIENTS = 6;
export const ADMIN = 2;

export const perProcess = POOL_PER_NODE * NODES_AT_ONCE + FILE_CLIENTS + ADMIN;

/** Nodes alive in this process, by a label that says who started them. */
const live = new Map<number, string>();
let claims = 0;

/**
 * Count one more node against the budget; returns the release (safe to call twice). Throws when
 * NODES_AT_ONCE are alive already.
 */
export function claimNode(label: string): () => void {
  if (live.size >= NODES_AT_ONCE) {
    throw new Error(
      `test connection budget: at most ${NODES_AT_ONCE} nodes at once (each with a pool of ${POOL_PER_NODE}), and ${[...live.values()].join(", ")} are alive; ` +
        `stop one first (or raise NODES_AT_ONCE in test/support/budget.ts, within the server's limit)`,
    );
  }
  const id = claims++;
  live.set(id, label);
  return () => void live.delete(id);
}

export function nodesAlive(): number {
  return live.size;
}

/**
 * How many test files run at once. Plain `bun test` runs them one after another in one process;
 * with `--parallel[=N]` each of N workers (BUN_TEST_WORKER_ID set) runs its own, each with this
 * process's budget.
 */
export function filesAtOnce(): number {
  if (!process.env.BUN_TEST_WORKER_ID) return 1;
  let args: string[] = [];
  try {
    args = readFileSync(`/proc/${process.ppid}/cmdline`, "utf8").split("\0");
  } catch {
    // not Linux: assume one worker per core, as Bun does
  }
  const at = args.findIndex((a) => a === "--parallel" || a.startsWith("--parallel="));
  const value = at < 0 ? undefined : args[at]!.includes("=") ? args[at]!.split("=")[1] : args[at + 1];
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : availableParallelism();
}

export interface ServerConnections {
  max: number;
  /** Kept for superusers (and, from Postgres 16, for pg_use_reserved_connections). */
  reserved: number;
  /** Client connections open now, this probe's excluded. */
  inUse: number;
  free: number;
}

/** What the server at `url` has to give, or undefined when nothing answers there. */
export async function serverConnections(url: string): Promise<ServerConnections | undefined> {
  const probe = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    const [row] = await probe`select current_setting('max_connections')::int as max,
        current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true)::int, 0) as reserved,
        (select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid())::int as in_use`;
    const { max, reserved, in_use: inUse } = row as { max: number; reserved: number; in_use: number };
    return { max, reserved, inUse, free: max - reserved - inUse };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ECONNREFUSED" || code === "CONNECT_TIMEOUT" || code === "ENOTFOUND") return undefined;
    throw error;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

/** The budget in one line, and whether the server can give it (a server that is not up yet: the embedded one, all ours). */
export function describeBudget(server: ServerConnections | undefined, files = filesAtOnce()): { total: number; line: string; enough: boolean } {
  const total = perProcess * files;
  const each = `${POOL_PER_NODE} per node × ${NODES_AT_ONCE} nodes at once + ${FILE_CLIENTS} for a file's own clients + ${ADMIN} admin = ${perProcess}`;
  const sum = files > 1 ? `(${each}) × ${files} files at once = ${total}` : each;
  if (!server) return { total, line: `test connection budget: ${sum} (no Postgres answers yet: the tests start the embedded one)`, enough: true };
  return {
    total,
    line: `test connection budget: ${sum} of max_connections ${server.max} (server reports ${server.inUse} in use, ${server.reserved} reserved, ${server.free} free)`,
    enough: server.free >= total,
  };
}
