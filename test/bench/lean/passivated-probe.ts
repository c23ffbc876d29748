/**
 * `bun test/bench/lean/passivated-probe.ts`: what a passivated wallet leaves behind in this
 * process's JS heap. A node as test/bench/node-server.ts starts it (no NATS, rate limits and
 * monitoring off), PROBE_WALLETS wallets copied in SQL from one opened through the service layer,
 * each made a live actor with one command (as node-server.ts /load-all does), hibernated, then
 * passivated; JSC heap statistics after a forced GC before and after, the object types that grew,
 * and (PROBE_SNAPSHOT=dir) heap snapshots before and after to diff by hand.
 *
 * Env: PROBE_WALLETS (10000), PROBE_CONCURRENCY (64), PROBE_SNAPSHOT (unset: none).
 */
import { heapStats } from "bun:jsc";
import { loadConfig } from "../../../src/config";
import { startNode } from "../../../src/node";
import { setLogLevel } from "../../../lib/log";
import { ADMIN, callerFor, testKeys } from "../../support/auth";
import { createTestDatabase } from "../../support/db";
import { loadCommand } from "../load-command";

const WALLETS = Number(process.env.PROBE_WALLETS ?? 10_000);
const CONCURRENCY = Number(process.env.PROBE_CONCURRENCY ?? 64);
const SNAPSHOT_DIR = process.env.PROBE_SNAPSHOT;
setLogLevel("warn");

function gc(): void {
  for (let i = 0; i < 4; i++) Bun.gc(true);
}

function reading() {
  gc();
  const h = heapStats();
  return { heapUsed: process.memoryUsage().heapUsed, objects: h.objectCount, types: h.objectTypeCounts as Record<string, number> };
}

function grown(a: ReturnType<typeof reading>, b: ReturnType<typeof reading>, per: number): string {
  return Object.entries(b.types)
    .map(([type, n]) => [type, n - (a.types[type] ?? 0)] as const)
    .filter(([, d]) => Math.abs(d) >= per / 10)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 12)
    .map(([type, d]) => `${type} ${(d / per).toFixed(2)}`)
    .join(", ");
}


const db = await createTestDatabase("probe");
const config = loadConfig({
  JWT_KEYS_FILE: (await testKeys()).file,
  DB_POOL_MAX: "10",
  ...process.env,
  RATE_LIMITS: "off",
  MONITORING: "off",
  ACTORS_MAX: String(Math.max(200_000, WALLETS * 2)),
  ACTOR_IDLE_MS: "3600000",
  NATS_URL: undefined,
  DATABASE_URL: db.url,
});
const node = await startNode(config, db.url);
try {
  const created = await node.ops.createWallet(callerFor(ADMIN), "probe-open", { ownerId: "probe-0", asset: "USD" });
  if (created.status !== 201) throw new Error(`open: ${JSON.stringify(created.body)}`);
  const template = created.body.id as string;
  const cols = (await node.db`select column_name from information_schema.columns where table_schema = 'public' and table_name = 'wallets' and is_generated = 'NEVER' order by ordinal_position`).map((c) => c.column_name as string);
  const exprs = cols.map((c) =>
    c === "id" ? "n.id" : c === "owner_id" ? "n.owner" : c === "snapshot" ? `jsonb_set(jsonb_set(t.snapshot, '{context,walletId}', to_jsonb(n.id::text)), '{context,ownerId}', to_jsonb(n.owner))` : `t."${c}"`,
  );
  await node.db.unsafe(
    `insert into wallets (${cols.map((c) => `"${c}"`).join(", ")})
     select ${exprs.join(", ")} from wallets t,
       lateral (select gen_random_uuid() as id, 'probe-' || g as owner from generate_series(1, ${WALLETS}) g) n
     where t.id = $1`,
    [template],
  );
  // Warm up every code path once (first-use caches, JIT) on the template, then forget it.
  for (let i = 0; i < 3; i++) await node.host.dispatch(template, loadCommand(-1 - i));
  node.host.passivateIdle(Date.now() + 365 * 24 * 3600 * 1000);

  const m0 = reading();
  if (SNAPSHOT_DIR) await Bun.write(`${SNAPSHOT_DIR}/before.json`, JSON.stringify(Bun.generateHeapSnapshot()));
  // As node-server.ts /load-all: the ids are read after the first reading and let go after the load.
  let ids = (await node.db`select id from wallets where id <> ${template}`).map((r) => r.id as string);
  const n = ids.length;
  const outcomes: Record<string, number> = {};
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ids.length) {
        const i = next++;
        const reply = await node.host.dispatch(ids[i]!, loadCommand(i));
        const code = `${reply.status} ${String((reply.body as { code?: unknown })?.code ?? "")}`;
        outcomes[code] = (outcomes[code] ?? 0) + 1;
      }
    }),
  );
  const loadMs = performance.now() - t0;
  ids = []; // the probe's own list of ids is not what a wallet leaves behind
  const loaded = node.host.size;
  node.host.passivateIdle(Date.now() + config.ACTOR_HIBERNATE_MS + 1);
  const m1 = reading();
  const dropped = node.host.passivateIdle(Date.now() + 365 * 24 * 3600 * 1000);
  const m2 = reading();
  if (SNAPSHOT_DIR) await Bun.write(`${SNAPSHOT_DIR}/after.json`, JSON.stringify(Bun.generateHeapSnapshot()));
  console.log(`${n} wallets loaded in ${(loadMs / 1000).toFixed(1)} s (${JSON.stringify(outcomes)}), ${loaded} live; passivated ${dropped}, ${node.host.size} left`);
  console.log(`hibernated: ${((m1.heapUsed - m0.heapUsed) / n).toFixed(0)} B/wallet, ${((m1.objects - m0.objects) / n).toFixed(2)} objects/wallet: ${grown(m0, m1, n)}`);
  console.log(`passivated: ${((m2.heapUsed - m0.heapUsed) / n).toFixed(0)} B/wallet, ${((m2.objects - m0.objects) / n).toFixed(2)} objects/wallet: ${grown(m0, m2, n)}`);
} finally {
  await node.close();
  await db.drop();
}
