import { readFileSync } from "node:fs";
import type { Db } from "../../lib/db";

/**
 * Bench-only instrumentation, no change to the core: reads the node's commit totals (how many
 * transactions the actors ran and how long each took), and samples CPU time of
 * this process (Bun: load generator and node together), of the Postgres backends serving this
 * database (read from /proc, so only when Postgres runs on this machine), and of the whole machine
 * (which includes anyone else's work). Together they say where a payment's cost goes.
 */
export class Probe {
  private count = 0;
  private total_ms = 0;
  private cpuStart = process.cpuUsage();
  private machineStart = machineCpu_ms();
  private backendsStart = new Map<number, number>();
  private wallStart = performance.now();

  constructor(
    private readonly db: Db,
    /** The node's commit totals (ActorHost.commitStats); read, never changed. */
    private readonly commits: () => { transactions: number; busyMs: number },
  ) {}

  async reset(): Promise<void> {
    this.backendsStart = await this.backendCpu_ms();
    this.count = this.commits().transactions;
    this.total_ms = this.commits().busyMs;
    this.cpuStart = process.cpuUsage();
    this.machineStart = machineCpu_ms();
    this.wallStart = performance.now();
  }

  async read(): Promise<ProbeReading> {
    const wall_ms = performance.now() - this.wallStart;
    const cpu = process.cpuUsage(this.cpuStart);
    const machine_ms = machineCpu_ms() - this.machineStart;
    const transactions = this.commits().transactions - this.count;
    const tx_total_ms = this.commits().busyMs - this.total_ms;
    let pg_ms = 0;
    for (const [pid, now_ms] of await this.backendCpu_ms()) pg_ms += now_ms - (this.backendsStart.get(pid) ?? 0);
    return {
      transactions,
      tx_mean_ms: transactions ? tx_total_ms / transactions : Number.NaN,
      wall_ms,
      bun_cpu_ms: (cpu.user + cpu.system) / 1000,
      pg_cpu_ms: pg_ms,
      machine_cpu_ms: machine_ms,
    };
  }

  /** CPU time so far of each Postgres backend connected to this database, by pid. */
  private async backendCpu_ms(): Promise<Map<number, number>> {
    const rows = await this.db`select pid from pg_stat_activity where datname = current_database()`;
    const out = new Map<number, number>();
    for (const { pid } of rows) {
      const ms = processCpu_ms(Number(pid));
      if (ms !== undefined) out.set(Number(pid), ms);
    }
    return out;
  }
}

export interface ProbeReading {
  transactions: number;
  tx_mean_ms: number;
  wall_ms: number;
  bun_cpu_ms: number;
  /** NaN-free but 0 when Postgres runs elsewhere (its processes are not visible here). */
  pg_cpu_ms: number;
  machine_cpu_ms: number;
}

/** USER_HZ: /proc reports CPU time in ticks of 10 ms on Linux. */
const TICK_MS = 10;

/** Busy CPU time of the whole machine so far, from /proc/stat; NaN where there is none. */
export function machineCpu_ms(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    return ticks.reduce((sum, t, i) => (i === 3 || i === 4 ? sum : sum + t), 0) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU time of one process so far, from /proc/<pid>/stat; undefined if not visible. */
export function processCpu_ms(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at "state"; utime and stime follow 10 later.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/**
 * Records the size of every batch one live actor takes from its mailbox, by watching the mailbox
 * array's `splice` (the actor takes a batch with `mailbox.splice(0, batchMax)`). It reaches into the
 * actor host's private fields, so it degrades to "unavailable" if the host's shape changes.
 */
export class BatchSizes {
  private readonly sizes = new Map<number, number>();
  readonly available: boolean;

  constructor(host: unknown, walletId: string) {
    const actor = (host as { actors?: Map<string, { mailbox?: unknown[] }> }).actors?.get(walletId);
    const mailbox = actor?.mailbox;
    this.available = Array.isArray(mailbox);
    if (!Array.isArray(mailbox)) return;
    const splice = mailbox.splice.bind(mailbox) as (start: number, deleteCount?: number) => unknown[];
    (mailbox as { splice: unknown }).splice = (start: number, deleteCount?: number) => {
      const taken = deleteCount === undefined ? splice(start) : splice(start, deleteCount);
      if (taken.length) this.sizes.set(taken.length, (this.sizes.get(taken.length) ?? 0) + 1);
      return taken;
    };
  }

  reset(): void {
    this.sizes.clear();
  }

  /** "size x count" for the most frequent batch sizes, e.g. "1x610 15x609". */
  summary(top = 6): string {
    if (!this.available) return "batch sizes unavailable";
    return [...this.sizes]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .sort((a, b) => a[0] - b[0])
      .map(([size, count]) => `${size}x${count}`)
      .join(" ");
  }
}
