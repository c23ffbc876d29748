import { readFileSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect as connectNats, headers, type NatsConnection } from "@nats-io/transport-node";
import { shardOf } from "../../actors/shards";
import { connect, type Db } from "../../lib/db";
import { ADMIN, tokenFor } from "../support/auth";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { startService, type ServiceProcess } from "../support/process";
import { type Attempt, ErrorSamples, inParallel, type Measured, runFor } from "./measure";
import { Probe } from "./probe";
import { printTable, rowJson, type Row } from "./report";

/**
 * The cluster part of `bun run bench`: three node processes (`bun src/main.ts`) on one fresh
 * database and the local NATS. It measures the same payment workloads with HTTP requests spread
 * over the nodes round-robin, payments over the NATS request-reply API, and the time from a node's
 * SIGKILL until a wallet it held answers again through another node. Without a NATS server (or
 * without JetStream) it says so and measures nothing.
 *
 * Env: NATS_URL (nats://127.0.0.1:4222); the nodes take SHARDS, LEASE_TTL_MS, DB_POOL_MAX, ... from
 * the environment as usual (RATE_LIMITS=off and LOG_LEVEL=warn are set here).
 */
export interface ClusterBenchOptions {
  seconds: number;
  warmupSeconds: number;
  concurrency: number;
  wallets: number;
  payment: string;
  funding: string;
}

const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const NODE_IDS = ["n1", "n2", "n3"];
/** Pause between two payment attempts on the killed node's wallet (the attempt itself may wait longer). */
const FAILOVER_POLL_MS = 20;

interface ClusterNode {
  id: string;
  service: ServiceProcess;
  alive: boolean;
}

interface ClusterView {
  shardCount: number;
  leaseTtlMs: number;
  nodes: { nodeId: string; shards?: number[]; unreachable?: boolean }[];
}

type MakeAttempt = (errors: ErrorSamples) => Attempt;

export async function clusterBench(o: ClusterBenchOptions): Promise<void> {
  console.log("");
  const nc = await reachNats();
  if (typeof nc === "string") {
    console.log(`cluster part skipped: ${nc}`);
    return;
  }
  const prefix = `cofferbench${crypto.randomUUID().slice(0, 8)}`;
  let db: TestDatabase | undefined;
  let probeDb: Db | undefined;
  const nodes: ClusterNode[] = [];
  try {
    db = await createTestDatabase("benchcluster");
    const env = { NATS_URL, NATS_SUBJECT_PREFIX: prefix, RATE_LIMITS: "off", LOG_LEVEL: "warn" };
    const started = await Promise.allSettled(NODE_IDS.map((id) => startService(db!.url, { ...env, NODE_ID: id })));
    for (const [i, s] of started.entries()) if (s.status === "fulfilled") nodes.push({ id: NODE_IDS[i]!, service: s.value, alive: true });
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;

    const token = await tokenFor(ADMIN);
    const view = await settled(nodes[0]!, nodes.map((n) => n.id), token);
    console.log(`cluster: ${nodes.length} node processes, NATS ${NATS_URL}, prefix ${prefix}, SHARDS=${view.shardCount}, LEASE_TTL_MS=${view.leaseTtlMs}; shards per node: ${view.nodes.map((n) => `${n.nodeId} ${n.shards!.length}`).join(", ")}`);
    const ownerOfShard = new Map(view.nodes.flatMap((n) => n.shards!.map((s) => [s, n.nodeId] as const)));
    const ownerOf = (walletId: string) => ownerOfShard.get(shardOf(walletId, view.shardCount));

    const [hot] = await openFundedWallets(nodes, 1, o, token);
    const many = await openFundedWallets(nodes, o.wallets, o, token);
    probeDb = connect(db.url, 2);
    const measure = new ClusterProbe(probeDb, nodes);
    const run = (name: string, group: Row["group"], make: MakeAttempt, note: () => string) => workload(o, name, group, make, measure, note);
    const anyOfMany = () => pick(many);

    const rows: Row[] = [];
    const hotHttp = new RoundRobin(nodes, ownerOf);
    rows.push(await run(`cluster 3 nodes hot wallet, HTTP round-robin`, "hot", httpPay(hotHttp, () => hot!, o.payment, token), () => hotHttp.note()));
    const manyHttp = new RoundRobin(nodes, ownerOf);
    rows.push(await run(`cluster 3 nodes ${o.wallets} wallets, HTTP round-robin`, "many", httpPay(manyHttp, anyOfMany, o.payment, token), () => manyHttp.note()));
    rows.push(await run(`cluster 3 nodes ${o.wallets} wallets, NATS request-reply`, "many", natsPay(nc, prefix, anyOfMany, o.payment, token), () => "any node answers (queue group), owner over NATS"));

    const failover = await killAndWait(nc, prefix, nodes, view, hot!, o.payment, token);
    const survivor = nodes.find((n) => n.alive)!;
    const verdict = await getJson(survivor.service.baseUrl, "/admin/verify", token);

    console.log("");
    printTable(rows);
    console.log(
      `failover: SIGKILL ${failover.victim} (held ${failover.victimShards} of ${view.shardCount} shards, LEASE_TTL_MS=${view.leaseTtlMs}); ` +
        `shard ${failover.shard} re-leased by ${failover.newOwner ?? "nobody"} after ${ms(failover.released_ms)}; ` +
        `a payment on its hot wallet answered 201 via ${failover.answeredVia ?? "-"} after ${ms(failover.answered_ms)} (${failover.attempts} attempt${failover.attempts === 1 ? "" : "s"}${failover.lastFailure ? `, last failure: ${failover.lastFailure}` : ""})`,
    );
    console.log(`  ledger verifier after the cluster run: ${verdict.body?.ok ? "clean" : `NOT clean: ${JSON.stringify(verdict.body).slice(0, 300)}`}`);
    console.log(
      JSON.stringify({
        bench: "payments-cluster",
        nodes: nodes.length,
        shards: view.shardCount,
        lease_ttl_ms: view.leaseTtlMs,
        concurrency: o.concurrency,
        seconds: o.seconds,
        results: rows.map(rowJson),
        failover: { ...failover, released_ms: round(failover.released_ms), answered_ms: round(failover.answered_ms) },
        ledger_clean: verdict.body?.ok === true,
      }),
    );
  } catch (error) {
    for (const n of nodes) console.log(`--- ${n.id} output (tail) ---\n${n.service.output().slice(-2_000)}`);
    throw error;
  } finally {
    await Promise.all(nodes.map((n) => n.service.kill()));
    await probeDb?.end({ timeout: 5 });
    await removeStreams(nc, prefix);
    await nc.drain().catch(() => {});
    await db?.drop();
  }
}

/** A connection, or why there is none (no server, or a server without JetStream). */
async function reachNats(): Promise<NatsConnection | string> {
  let nc: NatsConnection;
  try {
    nc = await connectNats({ servers: NATS_URL.split(","), timeout: 3_000, maxReconnectAttempts: 0, name: "coffer-bench" });
  } catch (error) {
    return `no NATS server reachable at ${NATS_URL} (${reason(error)}); start one with JetStream (nats-server -js) or set NATS_URL`;
  }
  try {
    await (await jetstreamManager(nc)).getAccountInfo();
    return nc;
  } catch (error) {
    await nc.close().catch(() => {});
    return `the NATS server at ${NATS_URL} has no JetStream (${reason(error)}); the cluster needs it for its leases (nats-server -js)`;
  }
}

async function removeStreams(nc: NatsConnection, prefix: string): Promise<void> {
  const jsm = await jetstreamManager(nc).catch(() => undefined);
  const names = [`KV_${prefix}_nodes`, `KV_${prefix}_leases`, `${prefix.toUpperCase().replaceAll("-", "_")}_EVENTS`];
  for (const name of names) await jsm?.streams.delete(name).catch(() => {});
}

/** Warm up (not measured), then measure; the measured run's first distinct failures are printed. */
async function workload(o: ClusterBenchOptions, name: string, group: Row["group"], make: MakeAttempt, probe: ClusterProbe, note: () => string): Promise<Row> {
  await runFor(o.warmupSeconds, o.concurrency, make(new ErrorSamples()), new ErrorSamples());
  const errors = new ErrorSamples();
  await probe.reset();
  const measured = await runFor(o.seconds, o.concurrency, make(errors), errors);
  const cpu = await probe.read(measured);
  for (const e of errors.list()) console.log(`  ${name}: ${e}`);
  console.log(`  done: ${name}`);
  return { workload: name, group, kind: "coffer", measured, note: `${note()}; ${cpu}` };
}

/** Sends each request to the next node in turn; counts how many landed on a node that is not the wallet's owner. */
class RoundRobin {
  private next = 0;
  private sent = 0;
  private forwarded = 0;
  constructor(
    private readonly nodes: ClusterNode[],
    private readonly ownerOf: (walletId: string) => string | undefined,
  ) {}
  pick(walletId: string): string {
    const node = this.nodes[this.next++ % this.nodes.length]!;
    this.sent++;
    if (this.ownerOf(walletId) !== node.id) this.forwarded++;
    return node.service.baseUrl;
  }
  note(): string {
    return `${Math.round((100 * this.forwarded) / Math.max(1, this.sent))}% sent on to the owner`;
  }
}

function httpPay(nodes: RoundRobin, walletFor: () => string, amount: string, token: string): MakeAttempt {
  const body = JSON.stringify({ amount });
  return (errors) => async () => {
    const walletId = walletFor();
    const res = await post(nodes.pick(walletId), `/v1/wallets/${walletId}/payments`, body, crypto.randomUUID(), token);
    if (res.status === 201) return true;
    errors.add(`${res.status} ${res.text.slice(0, 120)}`);
    return false;
  };
}

function natsPay(nc: NatsConnection, prefix: string, walletFor: () => string, amount: string, token: string): MakeAttempt {
  return (errors) => async () => {
    const h = headers();
    h.set("Authorization", `Bearer ${token}`);
    h.set("Idempotency-Key", crypto.randomUUID());
    const msg = await nc.request(`${prefix}.v1.wallets.payments.create`, JSON.stringify({ walletId: walletFor(), amount }), { timeout: 10_000, headers: h });
    const reply = JSON.parse(msg.string()) as { status: number; body: unknown };
    if (reply.status === 201) return true;
    errors.add(`${reply.status} ${JSON.stringify(reply.body).slice(0, 120)}`);
    return false;
  };
}

/**
 * SIGKILL the node that owns the hot wallet's shard, then (1) watch the lease bucket for another
 * node taking that shard, and (2) send one payment after another on the wallet through the
 * survivors, same idempotency key, until one is acknowledged. Both are timed from just before the kill.
 */
async function killAndWait(nc: NatsConnection, prefix: string, nodes: ClusterNode[], view: ClusterView, walletId: string, amount: string, token: string) {
  const shard = shardOf(walletId, view.shardCount);
  const fresh = await clusterView(nodes[0]!, token);
  const victimId = fresh.nodes.find((n) => n.shards?.includes(shard))?.nodeId;
  const victim = nodes.find((n) => n.id === victimId);
  if (!victim) throw new Error(`no node holds shard ${shard}: ${JSON.stringify(fresh)}`);
  const survivors = nodes.filter((n) => n !== victim);
  const victimShards = fresh.nodes.find((n) => n.nodeId === victimId)!.shards!.length;
  const leases = await new Kvm(nc).open(`${prefix}_leases`);
  const watch = await leases.watch({ key: `shard.${shard}` });
  const give_up = performance.now() + 3 * view.leaseTtlMs + 15_000;

  const t0 = performance.now();
  victim.alive = false;
  await victim.service.kill();

  const released = (async () => {
    for await (const entry of watch) {
      if (entry.operation === "PUT" && entry.string() !== victim.id) return { newOwner: entry.string(), released_ms: performance.now() - t0 };
    }
    return { newOwner: undefined, released_ms: Number.NaN };
  })();
  const stopWatch = setTimeout(() => watch.stop(), give_up - performance.now());

  const key = crypto.randomUUID();
  const body = JSON.stringify({ amount });
  let attempts = 0;
  let lastFailure: string | undefined;
  let answeredVia: string | undefined;
  let answered_ms = Number.NaN;
  while (performance.now() < give_up) {
    const via = survivors[attempts++ % survivors.length]!;
    const res = await post(via.service.baseUrl, `/v1/wallets/${walletId}/payments`, body, key, token).catch((e) => ({ status: 0, text: reason(e) }));
    if (res.status === 201) {
      answered_ms = performance.now() - t0;
      answeredVia = via.id;
      break;
    }
    lastFailure = `${res.status} ${res.text.slice(0, 100)}`;
    await Bun.sleep(FAILOVER_POLL_MS);
  }
  const lease = await Promise.race([released, Bun.sleep(Math.max(0, give_up - performance.now())).then(() => ({ newOwner: undefined, released_ms: Number.NaN }))]);
  clearTimeout(stopWatch);
  watch.stop();
  return { victim: victim.id, victimShards, shard, walletId, ...lease, answeredVia, answered_ms, attempts, ...(answeredVia ? {} : { lastFailure }) };
}

/**
 * Reads where the time goes while a workload runs: CPU of the three node processes (from /proc),
 * of this process (the load generator), of the database's Postgres backends, and of the machine.
 */
class ClusterProbe {
  private readonly probe: Probe;
  private nodesStart = 0;
  constructor(
    db: Db,
    private readonly nodes: ClusterNode[],
  ) {
    this.probe = new Probe(db, () => ({ transactions: 0, busyMs: 0 }));
  }
  async reset(): Promise<void> {
    await this.probe.reset();
    this.nodesStart = this.nodesCpu_ms();
  }
  async read(measured: Measured): Promise<string> {
    const p = await this.probe.read();
    const per = (cpu_ms: number) => ((cpu_ms * 1000) / Math.max(1, measured.ok)).toFixed(0);
    return `cpu us/pay: nodes ${per(this.nodesCpu_ms() - this.nodesStart)} client ${per(p.bun_cpu_ms)} pg ${per(p.pg_cpu_ms)}; machine ${(p.machine_cpu_ms / p.wall_ms).toFixed(2)} cores busy`;
  }
  private nodesCpu_ms(): number {
    return this.nodes.reduce((sum, n) => sum + processCpu_ms(n.service.proc.pid), 0);
  }
}

/** User + system CPU of a process so far, from /proc/<pid>/stat (ticks of 10 ms); 0 if not visible. */
function processCpu_ms(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

async function openFundedWallets(nodes: ClusterNode[], count: number, o: ClusterBenchOptions, token: string): Promise<string[]> {
  const ids: string[] = [];
  const tag = crypto.randomUUID().slice(0, 8);
  await inParallel(Array.from({ length: count }, (_, i) => i), o.concurrency, async (i) => {
    const via = nodes[i % nodes.length]!.service.baseUrl;
    const created = await definite(() => post(via, "/v1/wallets", JSON.stringify({ ownerId: `cluster-bench-${i}`, asset: "USD" }), `open-${tag}-${i}`, token));
    if (created.status !== 201) throw new Error(`wallet create failed: ${created.status} ${created.text}`);
    const id = (JSON.parse(created.text) as { id: string }).id;
    const credited = await definite(() => post(via, `/v1/wallets/${id}/credits`, JSON.stringify({ amount: o.funding }), `fund-${tag}-${i}`, token));
    if (credited.status !== 201) throw new Error(`credit failed: ${credited.status} ${credited.text}`);
    ids.push(id);
  });
  return ids;
}

/** Send again (same key) while the answer is "no node answers right now" (503) or no answer at all. */
async function definite(send: () => Promise<{ status: number; text: string }>, attempts = 50): Promise<{ status: number; text: string }> {
  let answer = { status: 0, text: "" };
  for (let i = 0; i < attempts; i++) {
    answer = await send().catch((e) => ({ status: 0, text: reason(e) }));
    if (answer.status !== 503 && answer.status !== 0) break;
    await Bun.sleep(100);
  }
  return answer;
}

/** Nothing announces "the shards have settled": poll the cluster view, bounded by a few lease lives. */
async function settled(via: ClusterNode, expected: string[], token: string): Promise<ClusterView> {
  const started = Date.now();
  let view: ClusterView | undefined;
  while (Date.now() - started < 10_000 + 5 * (view?.leaseTtlMs ?? 5_000)) {
    view = await clusterView(via, token).catch(() => undefined);
    if (view) {
      const ids = view.nodes.map((n) => n.nodeId).sort();
      const held = view.nodes.reduce((sum, n) => sum + (n.shards?.length ?? 0), 0);
      if (ids.join() === [...expected].sort().join() && held === view.shardCount && view.nodes.every((n) => (n.shards?.length ?? 0) > 0)) return view;
    }
    await Bun.sleep(100);
  }
  throw new Error(`the cluster did not settle on ${expected.join(",")}: ${JSON.stringify(view)}`);
}

async function clusterView(via: ClusterNode, token: string): Promise<ClusterView> {
  const res = await getJson(via.service.baseUrl, "/admin/cluster", token);
  if (res.status !== 200) throw new Error(`GET /admin/cluster: ${res.status}`);
  return res.body as ClusterView;
}

async function post(baseUrl: string, path: string, body: string, key: string, token: string): Promise<{ status: number; text: string }> {
  const res = await fetch(baseUrl + path, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key, authorization: `Bearer ${token}` },
    body,
  });
  return { status: res.status, text: await res.text() };
}

async function getJson(baseUrl: string, path: string, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(baseUrl + path, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

function pick<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

function reason(error: unknown): string {
  return String((error as Error)?.message ?? error);
}

function ms(n: number): string {
  return Number.isFinite(n) ? `${Math.round(n)} ms` : "never (gave up)";
}

function round(n: number): number | null {
  return Number.isFinite(n) ? Math.round(n) : null;
}
