/**
 * One Coffer node in a process of its own, for `bun run bench` (payments.bench.ts spawns it): the
 * node as src/node.ts wires it (no NATS, rate limits off), serving the real HTTP app on PORT, and
 * beside it, on a second loopback port, a small control listener the bench uses to look inside the
 * process without touching the measured path:
 *
 *   GET  /stats             commit totals (ActorHost.commitStats), live actors, this process's CPU and memory
 *   GET  /memory            the same after a forced full GC (Bun.gc(true)), with JSC heap statistics
 *   GET  /lag               transaction monitoring's backlog in events (0: caught up)
 *   POST /load              {ids: string[], concurrency}: make each wallet's actor live (one command it applies)
 *   POST /load-all          {concurrency}: the same for every wallet in the database
 *   POST /passivate         passivate every idle actor now (ActorHost.passivateIdle, as its sweeper does)
 *   POST /hibernate         what the sweeper does to actors idle for ACTOR_HIBERNATE_MS, now
 *   POST /flush-stats       make every pool connection flush its pg_stat counters (pg_stat_force_next_flush)
 *
 * Loading an actor: the actor has no read command (reads go to Postgres), so each wallet gets one
 * command its machine applies and finds nothing to do for (`wallet.unfreeze` on an active wallet:
 * 409 INVALID_TRANSITION, recorded under its key like any answer): the actor loads its snapshot,
 * starts its machine, answers and commits the key. That is a wallet that served a command and then
 * went quiet; /hibernate then does what the host does to it after ACTOR_HIBERNATE_MS.
 *
 * Prints one JSON line on stdout when ready: {"ready":true,"port":…,"control":…,"pid":…}.
 */
import { heapStats } from "bun:jsc";
import { loadConfig } from "../../src/config";
import { startNode } from "../../src/node";
import { setLogLevel } from "../../lib/log";
import { loadCommand } from "./load-command";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error("DATABASE_URL is required");
setLogLevel((process.env.LOG_LEVEL as "warn" | undefined) ?? "warn");

const config = loadConfig({ RATE_LIMITS: "off", DB_POOL_MAX: "10", ...process.env, NATS_URL: undefined, DATABASE_URL: databaseUrl });
const node = await startNode(config, databaseUrl);
const server = Bun.serve({ port: Number(process.env.PORT ?? 0), hostname: "127.0.0.1", fetch: node.http.fetch, maxRequestBodySize: 1024 * 1024 });

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function memory(types = false) {
  const m = process.memoryUsage();
  const h = heapStats();
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    jscHeapSize: h.heapSize,
    jscObjects: h.objectCount,
    jscExtraMemory: h.extraMemorySize,
    ...(types ? { objectTypeCounts: h.objectTypeCounts } : {}),
  };
}

function stats() {
  return { commits: { ...node.host.commitStats }, actors: node.host.size, cpu_ms: cpuMs(), ...memory() };
}

async function load(ids: string[], concurrency: number): Promise<{ loaded: number; ms: number; outcomes: Record<string, number> }> {
  const t0 = performance.now();
  const outcomes: Record<string, number> = {};
  let next = 0;
  async function worker() {
    while (next < ids.length) {
      const i = next++;
      let reply = await node.host.dispatch(ids[i]!, loadCommand(i));
      // A connection the bench ended (to flush its statistics) fails its next query once: again.
      for (let again = 0; again < 3 && reply.status === 503; again++) reply = await node.host.dispatch(ids[i]!, loadCommand(i));
      const code = `${reply.status} ${String((reply.body as { code?: unknown })?.code ?? "")}`;
      outcomes[code] = (outcomes[code] ?? 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, ids.length)) }, worker));
  return { loaded: node.host.size, ms: performance.now() - t0, outcomes };
}

const json = (body: unknown) => Response.json(body, { headers: { "cache-control": "no-store" } });

const control = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  idleTimeout: 0,
  async fetch(req) {
    const { pathname } = new URL(req.url);
    if (req.method === "GET" && pathname === "/stats") return json(stats());
    if (req.method === "GET" && pathname === "/memory") {
      for (let i = 0; i < 3; i++) Bun.gc(true);
      await Bun.sleep(50);
      Bun.gc(true);
      return json({ ...stats(), ...memory(true) });
    }
    if (req.method === "POST" && pathname === "/load") {
      const { ids, concurrency } = (await req.json()) as { ids: string[]; concurrency?: number };
      return json(await load(ids, concurrency ?? 64));
    }
    if (req.method === "POST" && pathname === "/load-all") {
      const { concurrency } = (await req.json()) as { concurrency?: number };
      const rows = await node.db`select id from wallets`;
      return json(await load(rows.map((r) => r.id as string), concurrency ?? 64));
    }
    if (req.method === "GET" && pathname === "/lag") {
      // Transaction monitoring's backlog (events committed, not yet looked at): 0 when it is caught up.
      const lag = await (node.monitoring as { lag?: () => Promise<{ events: number }> }).lag?.().catch(() => undefined);
      return json({ events: lag?.events ?? null });
    }
    if (req.method === "POST" && pathname === "/flush-stats") {
      // Backends flush their table counters lazily (up to 10 s after going idle): ask every
      // connection of the pool to flush at the end of its next transaction, and give it one. Each
      // query holds its connection a moment, so the pool has to use all of them.
      await Promise.all(Array.from({ length: config.DB_POOL_MAX * 2 }, () => node.db`select pg_stat_force_next_flush(), pg_sleep(0.05)`));
      return json({ ok: true });
    }
    if (req.method === "POST" && pathname === "/hibernate") {
      // As the sweeper does once an actor has been idle for ACTOR_HIBERNATE_MS (and not yet ACTOR_IDLE_MS).
      node.host.passivateIdle(Date.now() + config.ACTOR_HIBERNATE_MS + 1);
      return json({ actors: node.host.size });
    }
    if (req.method === "POST" && pathname === "/passivate") {
      const before = node.host.size;
      const dropped = node.host.passivateIdle(Date.now() + 365 * 24 * 3600 * 1000);
      return json({ before, dropped, after: node.host.size });
    }
    return new Response("not found", { status: 404 });
  },
});

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 10_000).unref();
  await server.stop(true);
  await control.stop(true);
  await node.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("SIGINT", () => void shutdown());

console.log(JSON.stringify({ ready: true, port: server.port, control: control.port, pid: process.pid }));
