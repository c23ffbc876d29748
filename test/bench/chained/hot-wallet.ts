/**
 * One hot wallet, chained commits on and off: payments per second and p50/p99 latency with 16 and
 * 64 concurrent in-process callers (through WalletService, as the bench's in-process workload),
 * each with a fresh idempotency key per payment. Not a test: it prints one line per run and a JSON
 * line at the end. Each configuration gets a node and a database of its own.
 *
 *   bun test/bench/chained/hot-wallet.ts            (CHAINED_SECONDS=4, CHAINED_CALLERS=16,64)
 *
 * Configurations: "before" is the commit path as it was (the pool, two transactions in flight, one
 * batch per wallet at a time); "lanes" is the default now: two commit lanes, each pipelining two
 * guarded statements, a wallet actor keeping two batches in flight; "lanes d3" three of each.
 * CHAINED_ONLY=before,lanes picks some.
 */
import { startNode } from "../../../src/node";
import { loadConfig } from "../../../src/config";
import { verifyLedger } from "../../../src/ledger/verify";
import { setLogLevel } from "../../../lib/log";
import { ADMIN, callerFor, testKeys } from "../../support/auth";
import { createTestDatabase } from "../../support/db";

setLogLevel("warn");
const SECONDS = Number(process.env.CHAINED_SECONDS ?? 4);
const CALLERS = (process.env.CHAINED_CALLERS ?? "16,64").split(",").map(Number);
const CALLER = callerFor(ADMIN);

const CONFIGS: Record<string, Record<string, string>> = {
  before: { COMMIT_LANES: "0", ACTOR_CHAIN_MAX: "1", COMMIT_IN_FLIGHT_MAX: "2" },
  lanes: { COMMIT_LANES: "2", COMMIT_PIPELINE_DEPTH: "2", ACTOR_CHAIN_MAX: "2", COMMIT_IN_FLIGHT_MAX: "4" },
  "lanes d3": { COMMIT_LANES: "2", COMMIT_PIPELINE_DEPTH: "3", ACTOR_CHAIN_MAX: "3", COMMIT_IN_FLIGHT_MAX: "4" },
};
const ONLY = process.env.CHAINED_ONLY?.split(",");
/** Rounds, each running every configuration once (interleaved: the machine's load drifts). */
const ROUNDS = Number(process.env.CHAINED_ROUNDS ?? 1);

const results: Record<string, string | number | boolean>[] = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const callers of CALLERS) {
    for (const [name, env] of Object.entries(CONFIGS)) {
      if (ONLY && !ONLY.includes(name)) continue;
      results.push(await run(name, env, callers));
    }
  }
}
// Per configuration and caller count: the median of the rounds.
const medians: Record<string, number> = {};
for (const row of results) {
  const key = `${row.config} @${row.callers}`;
  const all = results.filter((r) => `${r.config} @${r.callers}` === key).map((r) => r.paymentsPerSecond as number).sort((a, b) => a - b);
  medians[key] = all[Math.floor(all.length / 2)]!;
}
console.log(JSON.stringify({ bench: "chained-hot-wallet", seconds: SECONDS, rounds: ROUNDS, medianPaymentsPerSecond: medians }));
process.exit(0);

async function run(name: string, env: Record<string, string>, callers: number) {
  const db = await createTestDatabase("chainbench");
  const config = loadConfig({ ...process.env, JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", DB_POOL_MAX: "10", MONITORING: "off", ...env });
  const node = await startNode(config, db.url);
  try {
    const created = await node.ops.createWallet(CALLER, `open-${name}`, { ownerId: "bench", asset: "USD" });
    const id = created.body.id as string;
    await node.ops.credit(CALLER, `fund-${name}`, id, { amount: "1000000" });
    const commitsBefore = node.host.commitStats.transactions;
    const latencies: number[] = [];
    let failed = 0;
    const until = performance.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (performance.now() < until) {
          const started = performance.now();
          const outcome = await node.ops.pay(CALLER, crypto.randomUUID(), id, { amount: "0.01" });
          if (outcome.status === 201) latencies.push(performance.now() - started);
          else failed++;
        }
      }),
    );
    const commits = node.host.commitStats.transactions - commitsBefore;
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    const report = await verifyLedger(node.db);
    const row = {
      config: name,
      callers,
      paymentsPerSecond: Math.round(latencies.length / SECONDS),
      p50_ms: +at(0.5).toFixed(2),
      p99_ms: +at(0.99).toFixed(2),
      paymentsPerCommit: +(latencies.length / Math.max(1, commits)).toFixed(1),
      failed,
      pipelined: (node.host.commitStats as { pipelined?: number }).pipelined ?? 0,
      ledgerClean: report.ok,
    };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    await node.close();
    await db.drop();
  }
}
