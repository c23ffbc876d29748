/**
 * The load generator of `bun run bench`, in a process of its own (never inside the server's event
 * loop): the bench spawns `bun test/bench/generator.ts` for each run, the spec as JSON on stdin. It sends one
 * kind of request (an HTTP payment or any HTTP request, a payment over NATS request-reply, a debit of
 * the users' Pattern 1, a conventional SELECT … FOR UPDATE payment, or a bare insert of a payment's
 * rows), either
 *   - closed loop: `callers` callers, each sending its next request when its last is answered, or
 *   - open loop: requests started at a fixed `rate` per second whatever is outstanding (latency is
 *     timed from when each was due, so a server that falls behind is charged for the wait), with at
 *     most `outstandingMax` in flight (past it an arrival is dropped and counted as an error),
 * for `warmup` seconds unmeasured and then `seconds` measured. It prints JSON lines on stdout:
 * {"phase":"measure"} when the measured window opens (the bench reads the server's CPU then), then
 * {"result":{…}} (see GeneratorResult).
 */
import postgres, { type Sql } from "postgres";
import { RedisClient } from "bun";
import { connect as connectNats, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { conventionalPayer } from "./conventional";
import { Http1Pool } from "./http1";
import { pattern1Payer, type Pattern1Counters } from "./pattern1";

export type Load = { mode: "closed"; callers: number } | { mode: "open"; rate: number; outstandingMax?: number };

export type Work =
  /** POST `body` to a random one of `paths`, on `urls` round-robin; a 201 (or `expect`) is success. */
  | {
      kind: "http";
      urls: string[];
      paths: string[];
      body: string;
      token?: string;
      idempotency?: boolean;
      expect?: number;
      owners?: number[];
      /** As the typed client with followOwnerHints: a path's later requests go to the node a `Coffer-Owner` answer named (one of `urls`). */
      followHints?: boolean;
    }
  | { kind: "nats"; natsUrl: string; subject: string; wallets: string[]; amount: string; token: string }
  | { kind: "pattern1"; dbUrl: string; redisUrl: string; pool: number; users: string[]; amount_minor: string; lockRetryMs: number; lockWaitMs: number; lockTtlMs: number }
  | { kind: "conventional"; dbUrl: string; pool: number; accounts: number[]; amount_minor: string }
  /** One simple query (several statements, one implicit transaction) per attempt, worth `units` payments. */
  | { kind: "sql"; dbUrl: string; pool: number; query: string; units: number };

export interface GeneratorSpec {
  work: Work;
  load: Load;
  seconds: number;
  warmup: number;
}

export interface GeneratorResult {
  ok: number;
  errors: number;
  seconds: number;
  /** Acknowledged per second (× units for `sql`). */
  rate: number;
  /** Open loop: the rate asked for, and arrivals dropped because `outstandingMax` were in flight. */
  offered?: number;
  dropped?: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  mean_ms: number;
  errorSamples: string[];
  counters: Record<string, number>;
  /** This process's CPU during the measured window. */
  client_cpu_ms: number;
}

type Attempt = () => Promise<boolean>;

/** Open loop: requests in flight at most, unless the spec says. */
const OUTSTANDING_MAX = 4096;

class ErrorSamples {
  private readonly seen = new Map<string, number>();
  add(message: string): void {
    const known = this.seen.get(message);
    if (known !== undefined) this.seen.set(message, known + 1);
    else if (this.seen.size < 5) this.seen.set(message, 1);
  }
  list(): string[] {
    return [...this.seen].map(([m, n]) => `${n}x ${m}`);
  }
}

function pick<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

interface Prepared {
  attempt: Attempt;
  counters: () => Record<string, number>;
  close(): Promise<void>;
}

async function prepare(work: Work, load: Load, errors: () => ErrorSamples): Promise<Prepared> {
  const connectionsMax = load.mode === "closed" ? load.callers : (load.outstandingMax ?? OUTSTANDING_MAX);
  switch (work.kind) {
    case "http": {
      let next = 0;
      /** Path index → url index, from the answers' owner hints (followHints only). */
      const hinted = new Map<number, number>();
      let forwarded = 0;
      let sent = 0;
      const expect = work.expect ?? 201;
      // Kept-alive connections of our own (http1.ts): fetch costs the shared cores ~30 µs a request.
      const pools = work.urls.map((u) => new Http1Pool(u, connectionsMax));
      const base = `content-type: application/json\r\n${work.token ? `authorization: Bearer ${work.token}\r\n` : ""}`;
      const want = work.followHints ? "coffer-owner" : undefined;
      return {
        attempt: async () => {
          const p = Math.floor(Math.random() * work.paths.length);
          const u = hinted.get(p) ?? next++ % work.urls.length;
          sent++;
          if (work.owners && work.owners[p] !== u) forwarded++;
          const headers = work.idempotency === false ? base : `${base}idempotency-key: ${crypto.randomUUID()}\r\n`;
          const res = await pools[u]!.request("POST", work.paths[p]!, headers, work.body, want);
          if (work.followHints) {
            const owner = work.urls.indexOf(res.header ?? "");
            if (owner >= 0) hinted.set(p, owner);
          }
          if (res.status === expect) return true;
          errors().add(`${res.status} ${res.body.slice(0, 120)}`);
          return false;
        },
        counters: (): Record<string, number> => (work.owners ? { sent, forwarded } : {}),
        close: async () => {
          for (const pool of pools) pool.close();
        },
      };
    }
    case "nats": {
      const nc: NatsConnection = await connectNats({ servers: work.natsUrl.split(","), name: "coffer-bench-generator" });
      return {
        attempt: async () => {
          const h = natsHeaders();
          h.set("Authorization", `Bearer ${work.token}`);
          h.set("Idempotency-Key", crypto.randomUUID());
          const msg = await nc.request(work.subject, JSON.stringify({ walletId: pick(work.wallets), amount: work.amount }), { timeout: 10_000, headers: h });
          const reply = JSON.parse(msg.string()) as { status: number; body: unknown };
          if (reply.status === 201) return true;
          errors().add(`${reply.status} ${JSON.stringify(reply.body).slice(0, 120)}`);
          return false;
        },
        counters: () => ({}),
        close: () => nc.drain().catch(() => {}),
      };
    }
    case "pattern1": {
      const sql = connectDb(work.dbUrl, work.pool);
      const redis = new RedisClient(work.redisUrl);
      await redis.connect();
      const counters: Pattern1Counters = { lockRetries: 0, txRetries: 0 };
      const debit = pattern1Payer(sql, redis, work, counters);
      const amount = BigInt(work.amount_minor);
      return {
        attempt: () => debit(pick(work.users), crypto.randomUUID(), amount),
        counters: () => ({ ...counters }),
        close: async () => {
          redis.close();
          await sql.end({ timeout: 5 });
        },
      };
    }
    case "conventional": {
      const sql = connectDb(work.dbUrl, work.pool);
      const counters = { retries: 0 };
      const pay = conventionalPayer(sql, counters);
      const amount = BigInt(work.amount_minor);
      return {
        attempt: () => pay(pick(work.accounts), crypto.randomUUID(), amount),
        counters: () => ({ ...counters }),
        close: () => sql.end({ timeout: 5 }),
      };
    }
    case "sql": {
      const sql = connectDb(work.dbUrl, work.pool);
      return {
        attempt: async () => {
          await sql.unsafe(work.query);
          return true;
        },
        counters: () => ({}),
        close: () => sql.end({ timeout: 5 }),
      };
    }
  }
}

function connectDb(url: string, max: number): Sql {
  return postgres(url, { max, idle_timeout: 30, connect_timeout: 10, prepare: true, onnotice: () => {}, types: {} });
}

interface Window {
  latencies: number[];
  failed: number;
  dropped: number;
}

/** Closed loop: `callers` callers until the deadline; measured are the attempts that started inside [from, to). */
async function closedLoop(attempt: Attempt, callers: number, from: number, to: number, w: Window, errors: () => ErrorSamples): Promise<void> {
  async function caller(): Promise<void> {
    while (performance.now() < to) {
      const t0 = performance.now();
      let ok = false;
      try {
        ok = await attempt();
      } catch (error) {
        errors().add(String((error as Error)?.message ?? error).slice(0, 200));
      }
      if (t0 < from) continue;
      if (ok) w.latencies.push(performance.now() - t0);
      else w.failed++;
    }
  }
  await Promise.all(Array.from({ length: callers }, caller));
}

/** Open loop: arrivals due every 1/rate s from `start`; each timed from when it was due. */
async function openLoop(attempt: Attempt, rate: number, outstandingMax: number, start: number, from: number, to: number, w: Window, errors: () => ErrorSamples): Promise<void> {
  const interval = 1000 / rate;
  let outstanding = 0;
  const pending = new Set<Promise<void>>();
  let i = 0;
  while (true) {
    const now = performance.now();
    // Start every arrival that is due by now.
    for (;;) {
      const due = start + i * interval;
      if (due > now || due >= to) break;
      i++;
      const measured = due >= from;
      if (outstanding >= outstandingMax) {
        if (measured) w.dropped++;
        continue;
      }
      outstanding++;
      const p: Promise<void> = (async () => {
        let ok = false;
        try {
          ok = await attempt();
        } catch (error) {
          errors().add(String((error as Error)?.message ?? error).slice(0, 200));
        }
        outstanding--;
        if (!measured) return;
        if (ok) w.latencies.push(performance.now() - due);
        else w.failed++;
      })();
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    if (start + i * interval >= to) break;
    // At least a millisecond: a shorter sleep spins, and the generator would take the server's core.
    // Arrivals due meanwhile start together on waking; their latency counts from when they were due.
    const wait = start + i * interval - performance.now();
    await Bun.sleep(Math.max(1, Math.min(wait, 2)));
  }
  await Promise.all(pending);
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * Run one spec. `onResult` is told the result while the connections are still open (the bench
 * reads the Postgres backends' CPU then; a closed connection's backend is gone), and they close
 * after `lingerMs`.
 */
export async function generate(spec: GeneratorSpec, onMeasure: () => void = () => {}, onResult: (r: GeneratorResult) => void = () => {}, lingerMs = 0): Promise<GeneratorResult> {
  const warmErrors = new ErrorSamples();
  const measuredErrors = new ErrorSamples();
  let measuring = false;
  const errors = () => (measuring ? measuredErrors : warmErrors);
  const prepared = await prepare(spec.work, spec.load, errors);
  try {
    const start = performance.now();
    const from = start + spec.warmup * 1000;
    const to = from + spec.seconds * 1000;
    const w: Window = { latencies: [], failed: 0, dropped: 0 };
    let cpuAt = process.cpuUsage();
    let countersAt: Record<string, number> = {};
    const opener = setTimeout(() => {
      measuring = true;
      cpuAt = process.cpuUsage();
      countersAt = prepared.counters();
      onMeasure();
    }, Math.max(0, from - performance.now()));
    if (spec.load.mode === "closed") await closedLoop(prepared.attempt, spec.load.callers, from, to, w, errors);
    else await openLoop(prepared.attempt, spec.load.rate, spec.load.outstandingMax ?? OUTSTANDING_MAX, start, from, to, w, errors);
    clearTimeout(opener);
    const cpu = process.cpuUsage(cpuAt);
    // Attempts started before the deadline finish after it: the window is as long as they took.
    const elapsed = Math.max(spec.seconds, (performance.now() - from) / 1000);
    const sorted = Float64Array.from(w.latencies).sort();
    const units = spec.work.kind === "sql" ? spec.work.units : 1;
    const counters = prepared.counters();
    for (const k of Object.keys(counters)) counters[k]! -= countersAt[k] ?? 0;
    const sum = w.latencies.reduce((a, b) => a + b, 0);
    const result: GeneratorResult = {
      ok: sorted.length * units,
      errors: w.failed + w.dropped,
      seconds: elapsed,
      rate: (sorted.length * units) / elapsed,
      ...(spec.load.mode === "open" ? { offered: spec.load.rate * units, dropped: w.dropped } : {}),
      p50_ms: percentile(sorted, 50),
      p90_ms: percentile(sorted, 90),
      p99_ms: percentile(sorted, 99),
      p999_ms: percentile(sorted, 99.9),
      max_ms: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
      mean_ms: sorted.length ? sum / sorted.length : Number.NaN,
      errorSamples: measuredErrors.list(),
      counters,
      client_cpu_ms: (cpu.user + cpu.system) / 1000,
    };
    onResult(result);
    if (lingerMs) await Bun.sleep(lingerMs);
    return result;
  } finally {
    await prepared.close();
  }
}

if (import.meta.main) {
  const spec = JSON.parse((await Bun.stdin.text()) || "null") as GeneratorSpec | null;
  if (!spec) throw new Error("usage: echo '<spec JSON>' | bun test/bench/generator.ts");
  await generate(
    spec,
    () => console.log(JSON.stringify({ phase: "measure" })),
    (result) => console.log(JSON.stringify({ result }, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v))),
    500,
  );
  process.exit(0);
}
