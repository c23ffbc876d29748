import { readFileSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { shardOf } from "../../actors/shards";
import { connect, type Db } from "../../lib/db";
import { ADMIN, tokenFor } from "../support/auth";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { startService, type ServiceProcess } from "../support/process";
import type { Work } from "./generator";
import { inParallel } from "./measure";
import { fmt, runJson } from "./report";
import { run, type RunResult, type Watch } from "./runs";

/**
 * The cluster part of `bun run bench`: node processes (`bun src/main.ts`) on a fresh database and
 * the local NATS. First ONE such node (a one-node cluster: NATS, leases, the outbox relay to
 * JetStream, everything a clustered node does, with nobody to forward to) on a database of its
 * own, with the hot wallet and the many wallets over HTTP: what clustering itself costs against
 * the single bench node (which runs without NATS and has no relay). Then three nodes on one
 * database: the same payment workloads with HTTP requests spread over the nodes round-robin, and
 * following Coffer-Owner hints, payments over the NATS request-reply API (the load from the bench's
 * generator process, generator.ts, as for one node), and the time from a node's SIGKILL until a
 * wallet it held answers again through another node. Without a NATS server (or without JetStream)
 * it says so and measures nothing.
 *
 * Then the three nodes are restarted on the same database and wallets with the commit transactions
 * one node keeps in flight split over them (COMMIT_IN_FLIGHT_MAX 4 → 1 each;
 * BENCH_CLUSTER_COMMIT_IN_FLIGHT sets it) and the runs following owner hints are measured again:
 * every node on these two cores writes to the same Postgres, and at 4 each the three kept 12 in
 * flight, each commit carried a third of the payments, and Postgres spent 2–3× the CPU per payment
 * on the many wallets; at 1 each the hot wallet loses its pipelined commits (one lane) instead.
 *
 * Env: NATS_URL (nats://127.0.0.1:4222), BENCH_CLUSTER_COMMIT_IN_FLIGHT (per node of three, for the second set of runs); the
 * nodes take SHARDS, LEASE_TTL_MS, ... from the environment as usual (RATE_LIMITS=off,
 * LOG_LEVEL=warn, DB_POOL_MAX (10 for the one-node cluster, as the single node has; 8 for three:
 * three pools within the bench's connection budget) and MONITORING as the single node has it, off
 * unless set, are set here).
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
/** Commit transactions one node keeps in flight by default (src/config.ts COMMIT_IN_FLIGHT_MAX): the cluster's total. */
const COMMIT_IN_FLIGHT_TOTAL = Number(process.env.COMMIT_IN_FLIGHT_MAX ?? 4);
const COMMIT_IN_FLIGHT_PER_NODE = process.env.BENCH_CLUSTER_COMMIT_IN_FLIGHT ?? String(Math.max(1, Math.round(COMMIT_IN_FLIGHT_TOTAL / NODE_IDS.length)));
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

export interface ClusterOutcome {
  runs: { workload: string; result: RunResult; note: string }[];
  summary: string;
  json: Record<string, unknown>;
}

export async function clusterBench(o: ClusterBenchOptions): Promise<ClusterOutcome | undefined> {
  console.log("");
  const nc = await reachNats();
  if (typeof nc === "string") {
    console.log(`cluster part skipped: ${nc}`);
    return undefined;
  }
  const runs: ClusterOutcome["runs"] = [];
  const token = await tokenFor(ADMIN);
  const base = { NATS_URL, RATE_LIMITS: "off", LOG_LEVEL: "warn", MONITORING: process.env.MONITORING ?? "off", PUBLIC_URL: "self" };
  try {
    const one = await oneNodeCluster(nc, o, token, { ...base, DB_POOL_MAX: process.env.DB_POOL_MAX ?? "10" }, runs);
    const three = await threeNodes(nc, o, token, { ...base, DB_POOL_MAX: "8" }, runs);
    return {
      runs,
      summary: `${one}; ${three.summary}`,
      json: { ...three.json, one_node_cluster: one, results: runs.map((r) => runJson("cluster", r.workload, r.result, { note: r.note })) },
    };
  } finally {
    await nc.drain().catch(() => {});
  }
}

/** Closed-loop runs against a set of node processes, each printed and kept with CPU per payment of the nodes, Postgres and the generator. */
function measurer(o: ClusterBenchOptions, watch: Watch, runs: ClusterOutcome["runs"]) {
  return async (workload: string, work: Work, note: (r: RunResult) => string) => {
    const result = await run(work, { mode: "closed", callers: o.concurrency }, o.seconds, o.warmupSeconds, watch);
    const line = `${note(result)}; cpu us/pay: nodes ${fmt((result.server_cpu_ms * 1000) / Math.max(1, result.ok), 0)} pg ${fmt((result.pg_cpu_ms * 1000) / Math.max(1, result.ok), 0)} generator ${fmt((result.client_cpu_ms * 1000) / Math.max(1, result.ok), 0)}; ${fmt(result.machine_cores)} cores busy`;
    runs.push({ workload, result, note: line });
    for (const e of result.errorSamples) console.log(`  ${workload}: ${e}`);
    console.log(`  ${workload}, ${o.concurrency} callers: ${fmt(result.rate, 0)}/s p50 ${fmt(result.p50_ms)} p99 ${fmt(result.p99_ms)} ms, ${result.errors} errors; ${line}`);
  };
}

/**
 * One clustered node (NATS_URL set) on a database of its own: the hot wallet and the many wallets
 * over HTTP, as the single node is measured. Nothing is forwarded (it holds every shard); what it
 * pays more than the single node is what a clustered node does besides: leases, kicks, the relay.
 */
async function oneNodeCluster(nc: NatsConnection, o: ClusterBenchOptions, token: string, env: Record<string, string>, runs: ClusterOutcome["runs"]): Promise<string> {
  const prefix = `cofferbench${crypto.randomUUID().slice(0, 8)}`;
  let db: TestDatabase | undefined;
  let probeDb: Db | undefined;
  let node: ServiceProcess | undefined;
  try {
    db = await createTestDatabase("benchcluster1");
    node = await startService(db.url, { ...env, NATS_SUBJECT_PREFIX: prefix, NODE_ID: "c1" });
    const view = await settled({ id: "c1", service: node, alive: true }, ["c1"], token);
    console.log(`cluster: 1 node process with NATS (a one-node cluster), prefix ${prefix}, SHARDS=${view.shardCount}, DB_POOL_MAX=${env.DB_POOL_MAX}, COMMIT_IN_FLIGHT_MAX=${process.env.COMMIT_IN_FLIGHT_MAX ?? "4 (default)"}`);
    const nodes = [{ id: "c1", service: node, alive: true }];
    const [hot] = await openFundedWallets(nodes, 1, o, token);
    const many = await openFundedWallets(nodes, o.wallets, o, token);
    probeDb = connect(db.url, 2);
    const measure = measurer(o, { pids: [node.proc.pid], db: probeDb }, runs);
    const httpWork = (wallets: string[]): Work => ({ kind: "http", urls: [node!.baseUrl], paths: wallets.map((w) => `/v1/wallets/${w}/payments`), body: JSON.stringify({ amount: o.payment }), token });
    await measure("1 node with NATS, hot wallet, HTTP", httpWork([hot!]), () => "a one-node cluster: nothing forwarded");
    await measure(`1 node with NATS, ${o.wallets} wallets, HTTP`, httpWork(many), () => "a one-node cluster: nothing forwarded");
    return `one-node cluster (NATS, relay, leases; DB_POOL_MAX=${env.DB_POOL_MAX})`;
  } catch (error) {
    if (node) console.log(`--- c1 output (tail) ---\n${node.output().slice(-2_000)}`);
    throw error;
  } finally {
    await node?.kill();
    await probeDb?.end({ timeout: 5 });
    await removeStreams(nc, prefix);
    await db?.drop();
  }
}

async function threeNodes(nc: NatsConnection, o: ClusterBenchOptions, token: string, env: Record<string, string>, runs: ClusterOutcome["runs"]): Promise<{ summary: string; json: Record<string, unknown> }> {
  const prefix = `cofferbench${crypto.randomUUID().slice(0, 8)}`;
  let db: TestDatabase | undefined;
  let probeDb: Db | undefined;
  const nodes: ClusterNode[] = [];
  try {
    db = await createTestDatabase("benchcluster");
    const started = await Promise.allSettled(NODE_IDS.map((id) => startService(db!.url, { ...env, NATS_SUBJECT_PREFIX: prefix, NODE_ID: id })));
    for (const [i, s] of started.entries()) if (s.status === "fulfilled") nodes.push({ id: NODE_IDS[i]!, service: s.value, alive: true });
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;

    const view = await settled(nodes[0]!, nodes.map((n) => n.id), token);
    console.log(`cluster: ${nodes.length} node processes, NATS ${NATS_URL}, prefix ${prefix}, SHARDS=${view.shardCount}, LEASE_TTL_MS=${view.leaseTtlMs}, DB_POOL_MAX=${env.DB_POOL_MAX}; shards per node: ${view.nodes.map((n) => `${n.nodeId} ${n.shards!.length}`).join(", ")}`);
    const ownerOfShard = new Map(view.nodes.flatMap((n) => n.shards!.map((s) => [s, n.nodeId] as const)));
    const ownerOf = (walletId: string) => ownerOfShard.get(shardOf(walletId, view.shardCount));

    const [hot] = await openFundedWallets(nodes, 1, o, token);
    const many = await openFundedWallets(nodes, o.wallets, o, token);
    probeDb = connect(db.url, 2);
    const urls = nodes.map((n) => n.service.baseUrl);
    const ownerIndex = (w: string) => nodes.findIndex((n) => n.id === ownerOf(w));
    let measure = measurer(o, { pids: nodes.map((n) => n.service.proc.pid), db: probeDb }, runs);
    const forwarded = (r: RunResult) => `${Math.round((100 * (r.counters.forwarded ?? 0)) / Math.max(1, r.counters.sent ?? 0))}% sent on to the owner`;
    const payBody = JSON.stringify({ amount: o.payment });
    const httpWork = (wallets: string[]): Extract<Work, { kind: "http" }> => ({ kind: "http", urls, paths: wallets.map((w) => `/v1/wallets/${w}/payments`), body: payBody, token, owners: wallets.map(ownerIndex) });
    await measure("3 nodes, hot wallet, HTTP round-robin", httpWork([hot!]), forwarded);
    await measure(`3 nodes, ${o.wallets} wallets, HTTP round-robin`, httpWork(many), forwarded);
    // As the typed client does with followOwnerHints: requests start round-robin, then go where the answers say the wallet lives.
    await measure("3 nodes, hot wallet, HTTP following owner hints", { ...httpWork([hot!]), followHints: true }, forwarded);
    await measure(`3 nodes, ${o.wallets} wallets, HTTP following owner hints`, { ...httpWork(many), followHints: true }, forwarded);
    await measure(`3 nodes, ${o.wallets} wallets, NATS request-reply`, { kind: "nats", natsUrl: NATS_URL, subject: `${prefix}.v1.wallets.payments.create`, wallets: many, amount: o.payment, token }, () => "any node answers (queue group), owner over NATS");

    // The same three nodes (same ids, database and wallets) again, keeping as many commits in flight together as one node does.
    await Promise.all(nodes.map((n) => n.service.kill()));
    const split = { ...env, NATS_SUBJECT_PREFIX: prefix, COMMIT_IN_FLIGHT_MAX: COMMIT_IN_FLIGHT_PER_NODE };
    for (const n of nodes) n.service = await startService(db.url, { ...split, NODE_ID: n.id });
    await settled(nodes[0]!, nodes.map((n) => n.id), token);
    urls.splice(0, urls.length, ...nodes.map((n) => n.service.baseUrl)); // new ports, same order (the owners' indexes hold)
    console.log(`cluster: the ${nodes.length} nodes restarted with COMMIT_IN_FLIGHT_MAX=${COMMIT_IN_FLIGHT_PER_NODE} each`);
    measure = measurer(o, { pids: nodes.map((n) => n.service.proc.pid), db: probeDb }, runs);
    await measure(`3 nodes at ${COMMIT_IN_FLIGHT_PER_NODE} commit in flight each, hot wallet, HTTP following owner hints`, { ...httpWork([hot!]), followHints: true }, forwarded);
    await measure(`3 nodes at ${COMMIT_IN_FLIGHT_PER_NODE} commit in flight each, ${o.wallets} wallets, HTTP following owner hints`, { ...httpWork(many), followHints: true }, forwarded);

    const failover = await killAndWait(nc, prefix, nodes, view, hot!, o.payment, token);
    const survivor = nodes.find((n) => n.alive)!;
    const verdict = await getJson(survivor.service.baseUrl, "/admin/verify", token);

    const failoverLine =
      `failover: SIGKILL ${failover.victim} (held ${failover.victimShards} of ${view.shardCount} shards, LEASE_TTL_MS=${view.leaseTtlMs}); ` +
      `shard ${failover.shard} re-leased by ${failover.newOwner ?? "nobody"} after ${ms(failover.released_ms)}; ` +
      `a payment on its hot wallet answered 201 via ${failover.answeredVia ?? "-"} after ${ms(failover.answered_ms)} (${failover.attempts} attempt${failover.attempts === 1 ? "" : "s"}${failover.lastFailure ? `, last failure: ${failover.lastFailure}` : ""})`;
    console.log(`  ${failoverLine}`);
    console.log(`  ledger verifier after the cluster run: ${verdict.body?.ok ? "clean" : `NOT clean: ${JSON.stringify(verdict.body).slice(0, 300)}`}`);
    return {
      summary: `${nodes.length} node processes on the same cores, SHARDS=${view.shardCount}, ${o.concurrency} callers; ${failoverLine}; ledger ${verdict.body?.ok ? "clean" : "NOT clean"}`,
      json: {
        nodes: nodes.length,
        shards: view.shardCount,
        lease_ttl_ms: view.leaseTtlMs,
        commit_in_flight_per_node_split: Number(COMMIT_IN_FLIGHT_PER_NODE),
        concurrency: o.concurrency,
        seconds: o.seconds,
        failover: { ...failover, released_ms: round(failover.released_ms), answered_ms: round(failover.answered_ms) },
        ledger_clean: verdict.body?.ok === true,
      },
    };
  } catch (error) {
    for (const n of nodes) console.log(`--- ${n.id} output (tail) ---\n${n.service.output().slice(-2_000)}`);
    throw error;
  } finally {
    await Promise.all(nodes.map((n) => n.service.kill()));
    await probeDb?.end({ timeout: 5 });
    await removeStreams(nc, prefix);
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


function reason(error: unknown): string {
  return String((error as Error)?.message ?? error);
}

function ms(n: number): string {
  return Number.isFinite(n) ? `${Math.round(n)} ms` : "never (gave up)";
}

function round(n: number): number | null {
  return Number.isFinite(n) ? Math.round(n) : null;
}
