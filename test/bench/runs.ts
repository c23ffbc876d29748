import type { Subprocess } from "bun";
import type { Sql } from "postgres";
import type { GeneratorResult, GeneratorSpec, Load, Work } from "./generator";
import { machineCpu_ms, processCpu_ms } from "./probe";

/**
 * The bench's processes: servers it spawns (a Coffer node, the bare Hono app) and the load
 * generator it spawns for each run, and what it reads around a run: the server processes' CPU
 * (/proc/<pid>/stat), the CPU of the Postgres backends serving the bench's database, and the
 * machine's.
 */
const ROOT = new URL("../..", import.meta.url).pathname;
const KEEP_CHARS = 20_000;

export interface Spawned {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  /** The ready line the process printed (port, control port, …). */
  ready: Record<string, unknown>;
  output(): string;
  stop(): Promise<void>;
}

/** Spawn `bun <script>` and wait for its one-line JSON `{"ready":true,…}` on stdout. */
export async function spawnReady(script: string, env: Record<string, string | undefined>, timeout_ms = 60_000, bunArgs: string[] = []): Promise<Spawned> {
  const proc = Bun.spawn(["bun", ...bunArgs, script], { cwd: ROOT, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let output = "";
  let ready: Record<string, unknown> | undefined;
  let readyResolve!: () => void;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  const keep = async (stream: ReadableStream<Uint8Array>, watch: boolean) => {
    const decoder = new TextDecoder();
    let line = "";
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      output = (output + text).slice(-KEEP_CHARS);
      if (!watch || ready) continue;
      line += text;
      let nl: number;
      while ((nl = line.indexOf("\n")) >= 0) {
        const one = line.slice(0, nl).trim();
        line = line.slice(nl + 1);
        if (one.startsWith("{") && one.includes('"ready"')) {
          try {
            ready = JSON.parse(one) as Record<string, unknown>;
            readyResolve();
          } catch {
            // not the ready line
          }
        }
      }
    }
  };
  void keep(proc.stdout, true).catch(() => {});
  void keep(proc.stderr, false).catch(() => {});
  const timer = setTimeout(readyResolve, timeout_ms);
  await Promise.race([readyPromise, proc.exited]);
  clearTimeout(timer);
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
      if (!done) proc.kill("SIGKILL");
    }
    await proc.exited;
  };
  if (!ready) {
    await stop();
    throw new Error(`${script} did not get ready:\n${output.slice(-3000)}`);
  }
  return { proc, pid: proc.pid, ready, output: () => output, stop };
}

/** What the bench watches around a run besides the generator's own numbers. */
export interface Watch {
  /** Server processes whose CPU is charged to the run. */
  pids: number[];
  /** A connection to the bench's database: its Postgres backends' CPU is charged too. */
  db?: Sql;
  /** The node's commit count so far (its control listener's /stats), for payments per commit. */
  commits?: () => Promise<number>;
}

export interface RunResult extends GeneratorResult {
  load: Load;
  /** CPU of the watched server processes, of the database's backends, in the measured window. */
  server_cpu_ms: number;
  pg_cpu_ms: number;
  /** Busy cores of the whole machine (anyone's work) during the measured window. */
  machine_cores: number;
  /** Commits the node made in the measured window (when watched). */
  commits?: number;
}

async function backendsCpu(db: Sql | undefined): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (!db) return out;
  const rows = await db`select pid from pg_stat_activity where datname = current_database()`;
  for (const { pid } of rows) {
    const ms = processCpu_ms(Number(pid));
    if (ms !== undefined) out.set(Number(pid), ms);
  }
  return out;
}

function serversCpu(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (processCpu_ms(pid) ?? 0), 0);
}

/** Spawn the generator for one run; read the servers' and backends' CPU at the measured window's edges. */
export async function run(work: Work, load: Load, seconds: number, warmup: number, watch: Watch = { pids: [] }): Promise<RunResult> {
  const spec: GeneratorSpec = { work, load, seconds, warmup };
  const proc = Bun.spawn(["bun", "test/bench/generator.ts"], { cwd: ROOT, stdin: new Blob([JSON.stringify(spec)]), stdout: "pipe", stderr: "pipe" });
  let serverAt = serversCpu(watch.pids);
  let backendsAt = await backendsCpu(watch.db);
  let machineAt = machineCpu_ms();
  let wallAt = performance.now();
  let commitsAt = Number.NaN;
  let result: GeneratorResult | undefined;
  let stderr = "";
  const errDone = (async () => {
    for await (const chunk of proc.stderr) stderr = (stderr + new TextDecoder().decode(chunk)).slice(-KEEP_CHARS);
  })().catch(() => {});
  let end: { server: number; backends: Map<number, number>; machine: number; wall: number; commits: number } | undefined;
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of proc.stdout) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith("{")) continue;
      const msg = JSON.parse(line) as { phase?: string; result?: GeneratorResult };
      if (msg.phase === "measure") {
        serverAt = serversCpu(watch.pids);
        machineAt = machineCpu_ms();
        wallAt = performance.now();
        backendsAt = await backendsCpu(watch.db);
        if (watch.commits) commitsAt = await watch.commits();
      } else if (msg.result) {
        end = { server: serversCpu(watch.pids), machine: machineCpu_ms(), wall: performance.now(), backends: await backendsCpu(watch.db), commits: watch.commits ? await watch.commits() : Number.NaN };
        result = msg.result;
      }
    }
  }
  await proc.exited;
  await errDone;
  if (!result || !end) throw new Error(`the load generator failed (exit ${proc.exitCode}):\n${stderr.slice(-3000)}`);
  let pg = 0;
  for (const [pid, ms] of end.backends) pg += ms - (backendsAt.get(pid) ?? 0);
  const nan = (n: number | null) => (n === null ? Number.NaN : n);
  return {
    ...result,
    p50_ms: nan(result.p50_ms),
    p90_ms: nan(result.p90_ms),
    p99_ms: nan(result.p99_ms),
    p999_ms: nan(result.p999_ms),
    max_ms: nan(result.max_ms),
    mean_ms: nan(result.mean_ms),
    load,
    server_cpu_ms: end.server - serverAt,
    pg_cpu_ms: pg,
    machine_cores: (end.machine - machineAt) / Math.max(1, end.wall - wallAt),
    ...(Number.isFinite(end.commits - commitsAt) ? { commits: end.commits - commitsAt } : {}),
  };
}

export const P99_TARGET_MS = 50;

/** Holds at this rate: p99 under the target, nothing dropped or failed, and (nearly) all of it served. */
export function held(r: RunResult): boolean {
  return Number.isFinite(r.p99_ms) && r.p99_ms < P99_TARGET_MS && r.errors === 0 && r.rate >= 0.95 * (r.offered ?? r.rate);
}

/**
 * The highest fixed arrival rate held with p99 under 50 ms: start at `start`/s, double while it
 * holds, then bisect between the last rate held and the first not held, `bisections` times.
 */
export async function findCeiling(
  work: Work,
  start: number,
  o: { seconds: number; warmup: number; bisections: number; maxSteps: number; outstandingMax?: number },
  watch: Watch,
  onStep: (r: RunResult) => void,
): Promise<{ best: RunResult | undefined; steps: RunResult[] }> {
  const steps: RunResult[] = [];
  let good: RunResult | undefined;
  let bad: RunResult | undefined;
  let rate = Math.max(1, Math.round(start));
  const at = async (r: number) => {
    const res = await run(work, { mode: "open", rate: r, outstandingMax: o.outstandingMax ?? 4096 }, o.seconds, o.warmup, watch);
    steps.push(res);
    onStep(res);
    return res;
  };
  while (steps.length < o.maxSteps) {
    const res = await at(rate);
    if (held(res)) {
      good = res;
      rate *= 2;
    } else {
      bad = res;
      break;
    }
  }
  // The first rate tried did not hold: halve until one does (three times at most).
  for (let halvings = 0; !good && bad && halvings < 3 && steps.length < o.maxSteps; halvings++) {
    const r = Math.max(1, Math.round((bad.offered ?? rate) / 2));
    const res = await at(r);
    if (held(res)) good = res;
    else bad = res;
    if (r === 1) break;
  }
  for (let i = 0; i < o.bisections && good && bad && steps.length < o.maxSteps; i++) {
    const lo = good.offered!;
    const hi = bad.offered!;
    if (hi - lo <= Math.max(2, lo * 0.05)) break;
    const res = await at(Math.round((lo + hi) / 2));
    if (held(res)) good = res;
    else bad = res;
  }
  return { best: good, steps };
}
