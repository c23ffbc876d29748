/**
 * `bun run bench`: payments per second and p50/p99 latency for one hot wallet and for many wallets,
 * through the in-process API and through HTTP, against the conventional pattern (a SERIALIZABLE
 * SELECT ... FOR UPDATE transaction per payment) on the same Postgres. Not a test: it prints numbers.
 *
 * Next to them, webhook intake: signed Stripe events per second through POST /v1/webhooks/stripe
 * (webhooks.ts), against the node's own Stripe stand-in.
 *
 * Then the same workloads through a cluster of three node processes, the fail-over time after a
 * SIGKILL, and payments over the NATS request-reply API (cluster.bench.ts; skipped without NATS).
 *
 * Last, the chain part (chain.bench.ts): address validations per second per network, and 1,000 ETH
 * payouts on Anvil end to end through the node's own payout worker.
 *
 * Env: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1), BENCH_CONCURRENCY (16), BENCH_WALLETS (1000),
 * BENCH_DEPOSITS (200: the deposits webhook events are about),
 * NATS_URL (nats://127.0.0.1:4222, for the cluster part only: the single node runs without NATS),
 * BENCH_ONLY (a comma-separated subset of payments,cluster,chain; default all three, e.g.
 * BENCH_ONLY=chain), and the chain part's own (see chain.bench.ts).
 * The node's own settings (ACTOR_BATCH_MAX, DB_POOL_MAX, ...) are read from the environment as usual.
 */
import { startNode, type Node } from "../../src/node";
import type { Caller } from "../../src/api/wallet-service";
import { loadConfig } from "../../src/config";
import { verifyLedger } from "../../src/ledger/verify";
import { setLogLevel } from "../../lib/log";
import { ADMIN, callerFor, testKeys, tokenFor } from "../support/auth";
import { createTestDatabase } from "../support/db";
import { type Conventional, setupConventional } from "./conventional";
import { type Attempt, ErrorSamples, inParallel, type Measured, runFor } from "./measure";
import { BatchSizes, Probe, type ProbeReading } from "./probe";
import { clusterBench } from "./cluster.bench";
import { chainBench } from "./chain.bench";
import { checks, jsonLine, printChecks, printTable, rate, type Row } from "./report";
import { setupIntake, webhookIntake } from "./webhooks";
import { startStripe, TEST_WEBHOOK_SECRET, type StripeHarness } from "../support/stripe";

// Access lines for every payment would flood the report (and measure the terminal); warnings stay.
setLogLevel((process.env.LOG_LEVEL as "warn" | undefined) ?? "warn");

const SECONDS = envNumber("BENCH_SECONDS", 5);
const WARMUP_SECONDS = envNumber("BENCH_WARMUP_SECONDS", 1);
const CONCURRENCY = Math.floor(envNumber("BENCH_CONCURRENCY", 16));
const WALLETS = Math.floor(envNumber("BENCH_WALLETS", 1000));
const DEPOSITS = Math.floor(envNumber("BENCH_DEPOSITS", 200));
/** Every payment is one cent; every wallet gets a million dollars first, so none fails for funds. */
const PAYMENT = "0.01";
const PAYMENT_MINOR = 1n;
const FUNDING = "1000000";
const FUNDING_MINOR = 100_000_000n;
/** The bench pays as an admin: the policy check is on the measured path, as in production. */
const CALLER: Caller = callerFor(ADMIN);
/** The conventional pattern's own connection pool, as a typical service would size it. */
const CONVENTIONAL_POOL = 16;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** The node settings that shape throughput (batching, commit grouping, pool), whatever the core names them. */
function nodeSettings(config: Record<string, unknown>): string {
  return Object.entries(config)
    .filter(([name]) => /^(ACTOR_BATCH|COMMIT_|DB_POOL)/.test(name))
    .map(([name, value]) => `${name}=${String(value)}`)
    .join(" ");
}

function pick<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

/** A payment attempt that reports why it failed into the workload's error samples. */
type MakeAttempt = (errors: ErrorSamples) => Attempt;

/** Warm up (not measured), then measure; the measured run's first distinct failures are printed. */
async function workload(name: string, make: MakeAttempt, probe: Probe, atMeasureStart = () => {}): Promise<{ measured: Measured; probed: ProbeReading }> {
  await runFor(WARMUP_SECONDS, CONCURRENCY, make(new ErrorSamples()), new ErrorSamples());
  const errors = new ErrorSamples();
  await probe.reset();
  atMeasureStart();
  const measured = await runFor(SECONDS, CONCURRENCY, make(errors), errors);
  const probed = await probe.read();
  for (const e of errors.list()) console.log(`  ${name}: ${e}`);
  console.log(`  done: ${name}`);
  return { measured, probed };
}

async function openFundedWallets(node: Node, count: number): Promise<string[]> {
  const ids: string[] = [];
  await inParallel(Array.from({ length: count }, (_, i) => i), CONCURRENCY, async (i) => {
    const created = await node.ops.createWallet(CALLER, `open-${i}`, { ownerId: `bench-${i}`, asset: "USD" });
    if (created.status !== 201) throw new Error(`wallet create failed: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id as string;
    const credited = await node.ops.credit(CALLER, `fund-${i}`, id, { amount: FUNDING });
    if (credited.status !== 201) throw new Error(`credit failed: ${credited.status} ${JSON.stringify(credited.body)}`);
    ids.push(id);
  });
  return ids;
}

/**
 * The note says where the time goes: payments per actor transaction (the group-commit size; 1.00
 * means every payment paid for its own commit), the mean transaction time, and this process's CPU.
 */
async function cofferRow(name: string, group: Row["group"], make: MakeAttempt, probe: Probe, batches?: BatchSizes): Promise<Row> {
  const { measured, probed } = await workload(name, make, probe, () => batches?.reset());
  const perTx = (measured.ok + measured.errors) / Math.max(1, probed.transactions);
  const note = `${perTx.toFixed(2)} pay/tx, tx ${probed.tx_mean_ms.toFixed(2)} ms, ${cpuNote(probed, measured)}`;
  const detail = batches ? `batch sizes (size x count): ${batches.summary()}` : undefined;
  return { workload: name, group, kind: "coffer", measured, note, ...(detail ? { detail } : {}) };
}

async function conventionalRow(conv: Conventional, name: string, group: Row["group"], accounts: number[], probe: Probe): Promise<Row> {
  let retriesBefore = 0;
  const attempt: MakeAttempt = () => () => conv.pay(pick(accounts), crypto.randomUUID(), PAYMENT_MINOR);
  const { measured, probed } = await workload(name, attempt, probe, () => (retriesBefore = conv.retries));
  const retries = conv.retries - retriesBefore;
  const note = `${(retries / Math.max(1, measured.ok)).toFixed(2)} retries/pay, ${cpuNote(probed, measured)}`;
  return { workload: name, group, kind: "conventional", measured, note };
}

/** CPU per acknowledged payment: Bun (client and node), this database's Postgres backends, and the machine's load in cores. */
function cpuNote(probed: ProbeReading, measured: Measured): string {
  const per = (ms: number) => ((ms * 1000) / Math.max(1, measured.ok)).toFixed(0);
  const machine_cores = probed.machine_cpu_ms / probed.wall_ms;
  return `cpu us/pay: bun ${per(probed.bun_cpu_ms)} pg ${per(probed.pg_cpu_ms)}; machine ${machine_cores.toFixed(2)} cores busy`;
}

function inProcessPay(node: Node, walletFor: () => string): MakeAttempt {
  return (errors) => async () => {
    const outcome = await node.ops.pay(CALLER, crypto.randomUUID(), walletFor(), { amount: PAYMENT });
    if (outcome.status === 201) return true;
    errors.add(`${outcome.status} ${String(outcome.body.code)}`);
    return false;
  };
}

function httpPay(baseUrl: string, walletFor: () => string, token: string): MakeAttempt {
  const body = JSON.stringify({ amount: PAYMENT });
  return (errors) => async () => {
    const walletId = walletFor();
    const res = await fetch(`${baseUrl}/v1/wallets/${walletId}/payments`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID(), authorization: `Bearer ${token}` },
      body,
    });
    const text = await res.text();
    if (res.status === 201) return true;
    errors.add(`${res.status} ${text.slice(0, 120)}`);
    return false;
  };
}

/**
 * Callers here are a closed loop (each waits for its answer before sending again), so payments/s =
 * callers / mean latency, and a design that answers only after a durable commit cannot beat
 * callers / (one commit). The line says how far that floor is from the targets: when it is far,
 * the gap is CPU per payment and round trips (see the notes), not the disk.
 */
function printCeiling(rows: Row[], bareCommit_ms: number): void {
  const ceiling = CONCURRENCY / (bareCommit_ms / 1000);
  const parts = rows
    .filter((r) => r.kind === "conventional")
    .map((r) => `${(ceiling / rate(r.measured)).toFixed(1)}x ${r.workload}`);
  console.log(`commit floor at ${CONCURRENCY} callers: ${CONCURRENCY} / ${bareCommit_ms.toFixed(2)} ms = ${ceiling.toFixed(0)} payments/s at most (${parts.join(", ")})`);
}

async function main(): Promise<void> {
  const db = await createTestDatabase("bench");
  let node: Node | undefined;
  let server: ReturnType<typeof Bun.serve> | undefined;
  let conv: Conventional | undefined;
  let stripe: StripeHarness | undefined;
  try {
    // Stripe's stand-in, in this process; it sends no webhooks (the bench sends them, signed as Stripe does).
    stripe = await startStripe();
    const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", ...process.env, ...stripe.env, NATS_URL: undefined, DATABASE_URL: db.url });
    node = await startNode(config, db.url);
    server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });
    const baseUrl = `http://127.0.0.1:${server.port}`;
    const settings = await node.db`select name, setting from pg_settings where name in ('synchronous_commit', 'fsync', 'commit_delay') order by name`;
    console.log(`coffer payments bench: ${SECONDS}s per workload after ${WARMUP_SECONDS}s warm-up, ${CONCURRENCY} callers, ${WALLETS} wallets, ${navigator.hardwareConcurrency} cores`);
    console.log(`postgres: ${settings.map((s) => `${s.name}=${s.setting}`).join(" ")}; node: ${nodeSettings(config)}`);

    const hot = (await openFundedWallets(node, 1))[0]!;
    const probe = new Probe(node.db, () => node!.host.commitStats);
    const hotBatches = new BatchSizes(node.host, hot);
    const many = await openFundedWallets(node, WALLETS);
    const anyOfMany = () => pick(many);
    const rows: Row[] = [];
    rows.push(await cofferRow("coffer hot wallet, in-process", "hot", inProcessPay(node, () => hot), probe, hotBatches));
    rows.push(await cofferRow("coffer hot wallet, HTTP", "hot", httpPay(baseUrl, () => hot, await tokenFor(ADMIN)), probe, hotBatches));
    rows.push(await cofferRow(`coffer ${WALLETS} wallets, in-process`, "many", inProcessPay(node, anyOfMany), probe));
    rows.push(await cofferRow(`coffer ${WALLETS} wallets, HTTP`, "many", httpPay(baseUrl, anyOfMany, await tokenFor(ADMIN)), probe));

    conv = await setupConventional(db.url, WALLETS, FUNDING_MINOR, CONVENTIONAL_POOL);
    const bareCommit_ms = await conv.bareCommit_ms(200);
    console.log(`  one durable single-row commit on this Postgres (sequential, median): ${bareCommit_ms.toFixed(2)} ms`);
    rows.push(await conventionalRow(conv, "conventional hot account", "hot", [1], probe));
    rows.push(await conventionalRow(conv, `conventional ${WALLETS} accounts`, "many", conv.accountIds, probe));

    const intake = await setupIntake(node, stripe.client, CALLER, many, DEPOSITS, CONCURRENCY);
    console.log(`  ${DEPOSITS} deposits made and paid at the Stripe stand-in for the webhook workload`);
    rows.push(await intakeRow(node, baseUrl, intake, stripe, probe));

    const verdict = await verifyLedger(node.db);
    console.log(`  ledger verifier after the run: ${verdict.ok ? "clean" : `${verdict.mismatches.length} mismatches`}`);

    console.log("");
    printTable(rows);
    console.log("");
    const list = checks(rows);
    printChecks(list);
    printCeiling(rows, bareCommit_ms);
    console.log("");
    console.log(jsonLine(rows, list, { seconds: SECONDS, warmup_seconds: WARMUP_SECONDS, concurrency: CONCURRENCY, wallets: WALLETS, deposits: DEPOSITS, cores: navigator.hardwareConcurrency, bare_commit_ms: Math.round(bareCommit_ms * 100) / 100, ledger_clean: verdict.ok }));
  } finally {
    await conv?.close();
    await server?.stop(true);
    await node?.close();
    await stripe?.stop();
    await db.drop();
  }
}

/**
 * Webhook intake: each event verified and stored before its 200 (what is timed); processing runs
 * behind it on the same node, and the note says how long the backlog took to drain after the run,
 * and that each deposit was credited exactly once however many events named it.
 */
async function intakeRow(node: Node, baseUrl: string, intake: Awaited<ReturnType<typeof setupIntake>>, stripe: StripeHarness, probe: Probe): Promise<Row> {
  const name = "webhook intake, signed payment_intent.succeeded, HTTP";
  const { measured, probed } = await workload(name, webhookIntake(baseUrl, intake, TEST_WEBHOOK_SECRET, stripe.standin.apiVersion), probe);
  const drainStarted = performance.now();
  const drained = (await node.stripe!.events.idle(300_000)) && (await node.depositSaga.idle(300_000));
  const drain_s = (performance.now() - drainStarted) / 1000;
  const [counts] = await node.db`select (select count(*) from stripe_events)::int as stored,
    (select count(*) from journals where kind = 'deposit')::int as credits, (select count(distinct source_id) from journals where kind = 'deposit')::int as credited`;
  const note =
    `${counts!.stored} stored; backlog ${drained ? `drained in ${drain_s.toFixed(1)} s` : "NOT DRAINED"} after the run; ` +
    `${counts!.credited}/${intake.deposits.length} deposits credited, ${counts!.credits} credits; ${cpuNote(probed, measured)}`;
  if (counts!.credits !== counts!.credited) throw new Error(`a deposit was credited twice: ${counts!.credits} credits for ${counts!.credited} deposits`);
  return { workload: name, group: "intake", kind: "coffer", measured, note };
}

const PARTS = ["payments", "cluster", "chain"] as const;
const ONLY = (process.env.BENCH_ONLY ?? "").split(",").map((p) => p.trim()).filter(Boolean);
for (const part of ONLY) if (!(PARTS as readonly string[]).includes(part)) throw new Error(`BENCH_ONLY: unknown part ${JSON.stringify(part)} (parts: ${PARTS.join(", ")})`);
const runs = (part: (typeof PARTS)[number]) => ONLY.length === 0 || ONLY.includes(part);

if (runs("payments")) await main();
if (runs("cluster")) await clusterBench({ seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, concurrency: CONCURRENCY, wallets: WALLETS, payment: PAYMENT, funding: FUNDING });
if (runs("chain")) await chainBench({ concurrency: CONCURRENCY });
