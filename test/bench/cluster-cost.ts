/**
 * Where a clustered node's extra cost per payment goes: `bun test/bench/cluster-cost.ts`.
 *
 * Starts, each on a fresh database of its own and all at once, the set-ups named in COST_MODES
 * (default `single,c1,c3`):
 *   single  the bench's single node (node-server.ts: startNode without NATS), DB_POOL_MAX as the bench gives it (10)
 *   c1      one `bun src/main.ts` with NATS_URL and the env cluster.bench.ts gives its nodes (a one-node cluster)
 *   c3      three of them (the cluster part of the bench), the generator following Coffer-Owner hints
 *   c3@base the same from the tree at /tmp/coffer-base (any `@name`: /tmp/coffer-name), a copy of the
 *           code before a change, for A/B runs of two versions side by side
 *   c3~COMMIT_IN_FLIGHT_MAX=1  the same with that setting on its nodes (several `~K=V` allowed)
 * and then runs the same closed-loop payment workloads (COST_WORKLOADS: hot, many) against each in
 * turn, COST_ROUNDS times, alternating (A B C A B C …), so drift on a shared machine hits all of them.
 * Per run it prints payments/s and CPU µs per payment of the node processes, their Postgres
 * backends, the NATS server and the generator, plus per payment:
 * Postgres transactions (pg_stat_database.xact_commit of the set-up's database) and NATS messages
 * (in + out, from the server's /varz). The clustered set-ups use a nats-server of this script's own
 * (a free port, a monitoring port, a temporary store), so its CPU and its messages are theirs alone
 * (COST_NATS_URL: use that server instead, found by name for its CPU, and count no messages). The
 * counts are read around the whole run
 * (warm-up included) and divided by the payments the run's wallets received (movements rows), after
 * waiting COST_STATS_WAIT_MS (11 s: an idle backend flushes its counters within 10 s).
 *
 * It also prints what each set-up costs doing nothing (CPU ms per second of each node, 5 s) first.
 *
 * Env: COST_SECONDS (4), COST_WARMUP (1), COST_CALLERS (64), COST_WALLETS (1000), COST_ROUNDS (2; 0:
 * the idle reading only), COST_MODES, COST_WORKLOADS, COST_COUNT (on: the counting wait after each
 * run; off skips the counts), COST_PROFILE_DIR (every node writes a CPU profile there when it stops:
 * `bun test/bench/lean/profile-summary.ts <file>`), COST_NATS_URL; the nodes' own settings from the
 * environment (COST_NODE_ENV='{"K":"V"}' adds to all).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as connectNats } from "@nats-io/transport-node";
import postgres, { type Sql } from "postgres";
import { shardOf } from "../../actors/shards";
import { ADMIN, testKeys, tokenFor } from "../support/auth";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { freePort } from "../support/process";
import { envNumber, FUNDING, openFundedWallets, PAYMENT, startBenchNode } from "./common";
import type { Work } from "./generator";
import { processCpu_ms } from "./probe";
import { fmt } from "./report";
import { run, type RunResult } from "./runs";

const SECONDS = envNumber("COST_SECONDS", 4);
const WARMUP = envNumber("COST_WARMUP", 1);
const CALLERS = Math.floor(envNumber("COST_CALLERS", 64));
const WALLETS = Math.floor(envNumber("COST_WALLETS", 1000));
const ROUNDS = process.env.COST_ROUNDS === "0" ? 0 : Math.floor(envNumber("COST_ROUNDS", 2));
const STATS_WAIT_MS = envNumber("COST_STATS_WAIT_MS", 11_000);
const COUNT = (process.env.COST_COUNT ?? "on") === "on";
const MODES = (process.env.COST_MODES ?? "single,c1,c3").split(",").map((s) => s.trim()).filter(Boolean);
const WORKLOADS = (process.env.COST_WORKLOADS ?? "hot,many").split(",").map((s) => s.trim()).filter(Boolean);
let NATS_URL = process.env.COST_NATS_URL ?? "";
/** The monitoring endpoint of this script's own nats-server (none with COST_NATS_URL). */
let natsMonitorUrl: string | undefined;
const PROFILE_DIR = process.env.COST_PROFILE_DIR;
/** With COST_PROFILE_DIR, every node process writes a CPU profile there when it stops (never the generator). */
const NODE_ENV = { ...(JSON.parse(process.env.COST_NODE_ENV ?? "{}") as Record<string, string>), ...(PROFILE_DIR ? { BUN_OPTIONS: `--cpu-prof --cpu-prof-dir=${PROFILE_DIR}` } : {}) };

interface Setup {
  mode: string;
  db: TestDatabase;
  sql: Sql;
  pids: number[];
  urls: string[];
  owners?: (walletId: string) => number;
  hot: string;
  many: string[];
  prefix?: string;
  stop(): Promise<void>;
}

function natsServerPid(): number | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, "utf8").trim() === "nats-server") return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

async function startSetup(mode: string, token: string): Promise<Setup> {
  const db = await createTestDatabase(`cost${mode}`);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  if (mode === "single") {
    const node = await startBenchNode(db.url, { MONITORING: process.env.MONITORING ?? "off", ...NODE_ENV });
    const [hot] = await openFundedWallets(node.baseUrl, token, 1, "hot");
    const many = WORKLOADS.includes("many") ? await openFundedWallets(node.baseUrl, token, WALLETS, "many") : [];
    return { mode, db, sql, pids: [node.pid], urls: [node.baseUrl], hot: hot!, many, stop: async () => { await node.stop(); await sql.end(); await db.drop(); } };
  }
  // `c3@base`: the same, from the code at COST_BASE_DIR (a copy of the tree before a change), for A/B runs.
  // `c3~COMMIT_IN_FLIGHT_MAX=2`: with that setting on its nodes.
  const [name, ...settings] = mode.split("~");
  const extra = Object.fromEntries(settings.map((kv) => kv.split("=") as [string, string]));
  const [shape, variant] = name!.split("@");
  const cwd = variant ? `/tmp/coffer-${variant}` : new URL("../..", import.meta.url).pathname;
  const count = Number(shape!.slice(1));
  const prefix = `cofferbench${crypto.randomUUID().slice(0, 8)}`;
  const env = { NATS_URL, NATS_SUBJECT_PREFIX: prefix, RATE_LIMITS: "off", LOG_LEVEL: "warn", DB_POOL_MAX: "8", MONITORING: process.env.MONITORING ?? "off", PUBLIC_URL: "self", ...NODE_ENV, ...extra };
  const ids = Array.from({ length: count }, (_, i) => `${shape}${variant ?? ""}${settings.length ? `x${Bun.hash(mode).toString(36).slice(0, 4)}` : ""}n${i + 1}`);
  const nodes: Node[] = [];
  for (const id of ids) nodes.push(await startMain(db.url, { ...env, NODE_ID: id }, cwd));
  const view = await settled(nodes[0]!.baseUrl, ids, token);
  const ownerOfShard = new Map(view.nodes.flatMap((n) => n.shards!.map((s) => [s, n.nodeId] as const)));
  const ownerIndex = (w: string) => ids.indexOf(ownerOfShard.get(shardOf(w, view.shardCount))!);
  // Wallets opened through the first node (openFundedWallets takes one base URL; forwarding does the rest).
  const [hot] = await openFundedWallets(nodes[0]!.baseUrl, token, 1, "hot");
  const many = WORKLOADS.includes("many") ? await openFundedWallets(nodes[0]!.baseUrl, token, WALLETS, "many") : [];
  return {
    mode,
    db,
    sql,
    pids: nodes.map((n) => n.proc.pid),
    urls: nodes.map((n) => n.baseUrl),
    owners: ownerIndex,
    hot: hot!,
    many,
    prefix,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.kill()));
      await sql.end();
      const nc = await connectNats({ servers: NATS_URL });
      const jsm = await jetstreamManager(nc);
      for (const name of [`KV_${prefix}_nodes`, `KV_${prefix}_leases`, `${prefix.toUpperCase()}_EVENTS`]) await jsm.streams.delete(name).catch(() => {});
      await nc.close();
      await db.drop();
    },
  };
}

interface Node {
  proc: ReturnType<typeof Bun.spawn>;
  baseUrl: string;
  kill(): Promise<void>;
}

/** `bun src/main.ts` as cluster.bench.ts starts it (test/support/process.ts, without the test suite's node budget). */
async function startMain(databaseUrl: string, env: Record<string, string>, cwd: string): Promise<Node> {
  const port = freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const proc = Bun.spawn(["bun", "src/main.ts"], {
    cwd,
    env: { ...process.env, JWT_KEYS_FILE: (await testKeys()).file, ...env, PUBLIC_URL: baseUrl, DATABASE_URL: databaseUrl, PORT: String(port), HOST: "127.0.0.1" },
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
  });
  const node = {
    proc,
    baseUrl,
    // SIGTERM first (a profile is written on a clean exit), SIGKILL if it hangs.
    kill: async () => {
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(15_000).then(() => false)]);
      if (!done) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
  for (let i = 0; i < 400; i++) {
    if (proc.exitCode !== null) throw new Error(`node exited ${proc.exitCode}`);
    if ((await fetch(`${baseUrl}/health`).catch(() => undefined))?.status === 200) return node;
    await Bun.sleep(50);
  }
  await node.kill();
  throw new Error("node not healthy");
}

async function settled(baseUrl: string, expected: string[], token: string) {
  type View = { shardCount: number; nodes: { nodeId: string; shards?: number[] }[] };
  let view: View | undefined;
  for (let i = 0; i < 400; i++) {
    const res = await fetch(`${baseUrl}/admin/cluster`, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    view = (await res?.json().catch(() => undefined)) as View | undefined;
    if (view?.nodes && view.nodes.map((n) => n.nodeId).sort().join() === [...expected].sort().join() && view.nodes.reduce((s, n) => s + (n.shards?.length ?? 0), 0) === view.shardCount) return view;
    await Bun.sleep(100);
  }
  throw new Error(`cluster did not settle: ${JSON.stringify(view)}`);
}

async function counts(s: Setup) {
  const [db] = await s.sql`select xact_commit::float8 as x, xact_rollback::float8 as r, tup_returned::float8 as ret, tup_fetched::float8 as fet from pg_stat_database where datname = current_database()`;
  const [m] = await s.sql`select count(*)::float8 as n from movements`;
  // The server's messages in and out: every set-up's (only one is loaded at a time; the idle ones' rounds are in it too).
  const nats = natsMonitorUrl ? ((await (await fetch(`${natsMonitorUrl}/varz`)).json()) as { in_msgs: number; out_msgs: number }) : { in_msgs: Number.NaN, out_msgs: Number.NaN };
  return { xact: (db!.x as number) + (db!.r as number), fetched: db!.fet as number, movements: m!.n as number, natsIn: nats.in_msgs, natsOut: nats.out_msgs };
}

/** A nats-server of this script's own, with a monitoring port: its CPU and its message counts belong to the set-ups alone. */
async function ownNatsServer(): Promise<{ pid: number; stop(): Promise<void> }> {
  const [port, monitor] = [freePort(), freePort()];
  const store = mkdtempSync(`${tmpdir()}/coffer-cost-nats-`);
  const proc = Bun.spawn(["nats-server", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), "-js", "-sd", store], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  NATS_URL = `nats://127.0.0.1:${port}`;
  natsMonitorUrl = `http://127.0.0.1:${monitor}`;
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`${natsMonitorUrl}/healthz?js-enabled-only=true`).catch(() => undefined))?.ok) break;
    await Bun.sleep(50);
  }
  return {
    pid: proc.pid,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(store, { recursive: true, force: true });
    },
  };
}

const ownNats = NATS_URL ? undefined : await ownNatsServer();
const natsPid = ownNats?.pid ?? natsServerPid();
const token = await tokenFor(ADMIN);
console.log(`cluster-cost: modes ${MODES.join(",")}, workloads ${WORKLOADS.join(",")}, ${CALLERS} callers, ${SECONDS}s + ${WARMUP}s warm-up, ${ROUNDS} rounds; nats-server ${NATS_URL} pid ${natsPid ?? "not found"}; node env ${JSON.stringify(NODE_ENV)}`);
const setups: Setup[] = [];
try {
  for (const m of MODES) setups.push(await startSetup(m, token));
  // Let start-up work (relay catching up on the funding events, first rounds) settle.
  await Bun.sleep(3_000);
  // What each set-up costs doing nothing (rounds, pollers): CPU ms per second of each node, over 5 s.
  const idleAt = setups.map((s) => s.pids.map((p) => processCpu_ms(p) ?? 0));
  const natsIdleAt = natsPid ? processCpu_ms(natsPid) ?? 0 : 0;
  await Bun.sleep(5_000);
  for (const [i, s] of setups.entries()) console.log(`idle ${s.mode}: node CPU ms/s ${s.pids.map((p, j) => fmt(((processCpu_ms(p) ?? 0) - idleAt[i]![j]!) / 5, 1)).join(", ")}`);
  if (natsPid) console.log(`idle: nats-server CPU ms/s ${fmt(((processCpu_ms(natsPid) ?? 0) - natsIdleAt) / 5, 1)} (all set-ups together)`);
  const rows: string[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const w of WORKLOADS) {
      for (const s of setups) {
        const wallets = w === "hot" ? [s.hot] : s.many;
        const work: Work = {
          kind: "http",
          urls: s.urls,
          paths: wallets.map((id) => `/v1/wallets/${id}/payments`),
          body: JSON.stringify({ amount: PAYMENT }),
          token,
          ...(s.owners ? { owners: wallets.map(s.owners), followHints: s.urls.length > 1 } : {}),
        };
        const before = COUNT ? await counts(s) : undefined;
        const natsAt = natsPid ? processCpu_ms(natsPid) ?? 0 : 0;
        const r: RunResult = await run(work, { mode: "closed", callers: CALLERS }, SECONDS, WARMUP, { pids: s.pids, db: s.sql });
        const natsCpu = natsPid ? (processCpu_ms(natsPid) ?? 0) - natsAt : 0;
        const elapsedAll = r.seconds + WARMUP;
        let perPay = { xact: Number.NaN, fetched: Number.NaN, nats: Number.NaN };
        if (COUNT && before) {
          await Bun.sleep(STATS_WAIT_MS);
          const after = await counts(s);
          const pays = Math.max(1, after.movements - before.movements);
          perPay = { xact: (after.xact - before.xact) / pays, fetched: (after.fetched - before.fetched) / pays, nats: (after.natsIn + after.natsOut - before.natsIn - before.natsOut) / pays };
        }
        const us = (ms: number) => fmt((ms * 1000) / Math.max(1, r.ok), 0);
        // NATS server CPU is read around the whole run (warm-up too): scaled to the measured window.
        const natsUs = fmt(((natsCpu * (r.seconds / elapsedAll)) * 1000) / Math.max(1, r.ok), 0);
        const fwd = r.counters.sent ? `${Math.round((100 * (r.counters.forwarded ?? 0)) / r.counters.sent)}% fwd` : "";
        const row = [String(round + 1), w, s.mode, fmt(r.rate, 0), fmt(r.p50_ms), fmt(r.p99_ms), String(r.errors), us(r.server_cpu_ms), us(r.pg_cpu_ms), natsUs, us(r.client_cpu_ms), fmt(r.machine_cores), fmt(perPay.xact, 3), fmt(perPay.fetched, 1), fmt(perPay.nats, 3), fwd];
        rows.push(row);
        console.log(row.join("\t") + (r.errorSamples.length ? `\t${r.errorSamples.join("; ")}` : ""));
      }
    }
  }
  console.log("");
  console.log(["round", "work", "mode", "per s", "p50", "p99", "err", "node us", "pg us", "nats us", "gen us", "cores", "pg xact/pay", "tup fetched/pay", "nats msgs/pay", ""].join("\t"));
  for (const r of rows) console.log(r.join("\t"));
} finally {
  for (const s of setups) await s.stop().catch((e) => console.log(`stop ${s.mode}: ${String(e)}`));
  await ownNats?.stop();
}
process.exit(0);
