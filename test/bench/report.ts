import type { RunResult } from "./runs";

/** Printing helpers of `bun run bench`: aligned tables, numbers, and the JSON the README is filled from. */

export function fmt(n: number | null | undefined, digits?: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "-";
  if (digits !== undefined) return n.toFixed(digits);
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(Math.abs(n) < 10 ? 2 : 1);
}

export function round(n: number | null | undefined, digits = 2): number | null {
  if (n === null || n === undefined || !Number.isFinite(n)) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A table: the first column and any listed in `left` are left-aligned, the rest right-aligned. */
export function grid(header: string[], rows: string[][], left: number[] = [0]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** µs per acknowledged request of some CPU time. */
export function perReq_us(cpu_ms: number, r: RunResult): number {
  return r.ok > 0 ? (cpu_ms * 1000) / r.ok : Number.NaN;
}

/** How a run was loaded, as a table cell. */
export function loadCell(r: RunResult): string {
  return r.load.mode === "closed" ? `${r.load.callers} callers` : `open ${r.load.rate}/s`;
}

/** One run as the JSON report holds it. */
export function runJson(section: string, workload: string, r: RunResult, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    section,
    workload,
    load: r.load,
    per_s: round(r.rate, 1),
    ok: r.ok,
    errors: r.errors,
    p50_ms: round(r.p50_ms),
    p90_ms: round(r.p90_ms),
    p99_ms: round(r.p99_ms),
    max_ms: round(r.max_ms),
    ...(r.offered !== undefined ? { offered_per_s: r.offered, dropped: r.dropped } : {}),
    server_cpu_us_per_req: round(perReq_us(r.server_cpu_ms, r), 0),
    pg_cpu_us_per_req: round(perReq_us(r.pg_cpu_ms, r), 0),
    client_cpu_us_per_req: round(perReq_us(r.client_cpu_ms, r), 0),
    machine_cores_busy: round(r.machine_cores),
    counters: r.counters,
    ...(r.errorSamples.length ? { error_samples: r.errorSamples } : {}),
    ...extra,
  };
}

export interface Target {
  name: string;
  /** What was measured, as printed (e.g. "23.1x", "1.4 KB"). */
  value: string;
  target: string;
  pass: boolean | null;
  detail: string;
}

export function printTargets(list: Target[]): void {
  console.log(
    grid(
      ["target", "measured", "wanted", "verdict", "from"],
      list.map((t) => [t.name, t.value, t.target, t.pass === null ? "n/a" : t.pass ? "MET" : "MISSED", t.detail]),
      [0, 4],
    ),
  );
}
