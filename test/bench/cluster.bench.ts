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
import { run, type RunResult } from "./runs";

/**
 * The cluster part of `bun run bench`: three node processes (`bun src/main.ts`) on one fresh
 * database and the local NATS. It measures the same payment workloads with HTTP requests spread
 * over the nodes round-robin, payments over the NATS request-reply API (the load from the bench's
 * generator process, generator.ts, as for one node), and the time from a node's SIGKILL until a
 * wallet it held answers again through another node. Without a NATS server (or without JetStream)
 * it says so and measures nothing.
 *
 * Env: NATS_URL (nats://127.0.0.1:4222); the nodes take SHARDS, LEASE_TTL_MS, ... from the
 * environment as usual (RATE_LIMITS=off, LOG_LEVEL=warn, DB_POOL_MAX=8 (three pools within the
 * bench's connection budget) and MONITORING as the single node has it, off unless set, are set here).
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
  const prefix = `cofferbench${crypto.randomUUID().slice(0, 8)}`;
  let db: TestDatabase | undefined;
  let probeDb: Db | undefined;
  const nodes: ClusterNode[] = [];
  try {
    db = await createTestDatabase("benchcluster");
    const env = { NATS_URL, NATS_SUBJECT_PREFIX: prefix, RATE_LIMITS: "off", LOG_LEVEL: "warn", DB_POOL_MAX: "8", MONITORING: process.env.MONITORING ?? "off", PUBLIC_URL: "self" };
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
    const watch = { pids: nodes.map((n) => n.service.proc.pid), db: probeDb };
    const urls = nodes.map((n) => n.service.baseUrl);
    const ownerIndex = (w: string) => nodes.findIndex((n) => n.id === ownerOf(w));
    const runs: ClusterOutcome["runs"] = [];
    const measure = async (workload: string, work: Work, note: (r: RunResult) => string) => {
      const result = await run(work, { mode: "closed", callers: o.concurrency }, o.seconds, o.warmupSeconds, watch);
      const line = `${note(result)}; cpu us/pay: nodes ${fmt((result.server_cpu_ms * 1000) / Math.max(1, result.ok), 0)} pg ${fmt((result.pg_cpu_ms * 1000) / Math.max(1, result.ok), 0)} generator ${fmt((result.client_cpu_ms * 1000) / Math.max(1, result.ok), 0)}; ${fmt(result.machine_cores)} cores busy`;
      runs.push({ workload, result, note: line });
      for (const e of result.errorSamples) console.log(`  ${workload}: ${e}`);
      console.log(`  ${workload}, ${o.concurrency} callers: ${fmt(result.rate, 0)}/s p50 ${fmt(result.p50_ms)} p99 ${fmt(result.p99_ms)} ms, ${result.errors} errors; ${line}`);
    };
    const forwarded = (r: RunResult) => `${Math.round((100 * (r.counters.forwarded ?? 0)) / Math.max(1, r.counters.sent ?? 0))}% sent on to the owner`;
    const payBody = JSON.stringify({ amount: o.payment });
    const httpWork = (wallets: string[]): Extract<Work, { kind: "http" }> => ({ kind: "http", urls, paths: wallets.map((w) => `/v1/wallets/${w}/payments`), body: payBody, token, owners: wallets.map(ownerIndex) });
    await measure("3 nodes, hot wallet, HTTP round-robin", httpWork([hot!]), forwarded);
    await measure(`3 nodes, ${o.wallets} wallets, HTTP round-robin`, httpWork(many), forwarded);
    // As the typed client does with followOwnerHints: requests start round-robin, then go where the answers say the wallet lives.
    await measure("3 nodes, hot wallet, HTTP following owner hints", { ...httpWork([hot!]), followHints: true }, forwarded);
    await measure(`3 nodes, ${o.wallets} wallets, HTTP following owner hints`, { ...httpWork(many), followHints: true }, forwarded);
    await measure(`3 nodes, ${o.wallets} wallets, NATS request-reply`, { kind: "nats", natsUrl: NATS_URL, subject: `${prefix}.v1.wallets.payments.create`, wallets: many, amount: o.payment, token }, () => "any node answers (queue group), owner over NATS");

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
      runs,
      summary: `${nodes.length} node processes on the same cores, SHARDS=${view.shardCount}, ${o.concurrency} callers; ${failoverLine}; ledger ${verdict.body?.ok ? "clean" : "NOT clean"}`,
      json: {
        nodes: nodes.length,
        shards: view.shardCount,
        lease_ttl_ms: view.leaseTtlMs,
        concurrency: o.concurrency,
        seconds: o.seconds,
        results: runs.map((r) => runJson("cluster", r.workload, r.result, { note: r.note })),
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
