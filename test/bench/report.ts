import { type Measured, percentile } from "./measure";

export interface Row {
  workload: string;
  /** Which comparison group the row belongs to (`intake`: Stripe webhooks, not payments), and whether it is Coffer or the conventional pattern. */
  group: "hot" | "many" | "intake";
  kind: "coffer" | "conventional";
  measured: Measured;
  /** A note on the mechanism: commands per commit for Coffer, retries for the conventional pattern. */
  note: string;
  /** A longer diagnostic printed under the table. */
  detail?: string;
}

export const TARGETS = { hotRatio: 20, manyRatio: 5, p99_ms: 50 } as const;

export function rate(m: Measured): number {
  return m.seconds > 0 ? m.ok / m.seconds : 0;
}

export function printTable(rows: Row[]): void {
  const header = ["workload", "per s", "p50 ms", "p99 ms", "errors", "note"];
  const body = rows.map((r) => [
    r.workload,
    rate(r.measured).toFixed(0),
    fmt(percentile(r.measured.latencies_ms, 50)),
    fmt(percentile(r.measured.latencies_ms, 99)),
    String(r.measured.errors),
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
  for (const r of rows) if (r.detail) console.log(`  ${r.workload}: ${r.detail}`);
}

export interface Check {
  name: string;
  value: number;
  target: string;
  pass: boolean;
}

/** Ratios of each Coffer workload to the conventional pattern of its group, and each Coffer p99. */
export function checks(rows: Row[]): Check[] {
  const out: Check[] = [];
  for (const group of ["hot", "many"] as const) {
    const base = rows.find((r) => r.group === group && r.kind === "conventional");
    const wanted = group === "hot" ? TARGETS.hotRatio : TARGETS.manyRatio;
    for (const r of rows.filter((x) => x.group === group && x.kind === "coffer")) {
      const ratio = base && rate(base.measured) > 0 ? rate(r.measured) / rate(base.measured) : Number.NaN;
      out.push({ name: `${r.workload} vs ${base?.workload ?? "?"}`, value: ratio, target: `>= ${wanted}x`, pass: ratio >= wanted });
    }
  }
  for (const r of rows.filter((x) => x.kind === "coffer")) {
    const p99 = percentile(r.measured.latencies_ms, 99);
    out.push({ name: `${r.workload} p99`, value: p99, target: `< ${TARGETS.p99_ms} ms`, pass: p99 < TARGETS.p99_ms });
  }
  return out;
}

export function printChecks(list: Check[]): void {
  const width = Math.max(...list.map((c) => c.name.length));
  for (const c of list) {
    const value = c.target.endsWith("x") ? `${c.value.toFixed(1)}x` : `${fmt(c.value)} ms`;
    console.log(`${c.pass ? "PASS" : "MISS"}  ${c.name.padEnd(width)}  ${value.padStart(9)}  (target ${c.target})`);
  }
}

export function jsonLine(rows: Row[], list: Check[], settings: Record<string, unknown>): string {
  return JSON.stringify({
    bench: "payments",
    ...settings,
    results: rows.map(rowJson),
    checks: list.map((c) => ({ name: c.name, value: round(c.value), target: c.target, pass: c.pass })),
    pass: list.every((c) => c.pass),
  });
}

/** One row as the JSON line reports it. */
export function rowJson(r: Row): Record<string, unknown> {
  return {
    workload: r.workload,
    kind: r.kind,
    ...(r.group === "intake" ? { events_per_s: round(rate(r.measured)) } : { payments_per_s: round(rate(r.measured)) }),
    ok: r.measured.ok,
    errors: r.measured.errors,
    p50_ms: round(percentile(r.measured.latencies_ms, 50)),
    p99_ms: round(percentile(r.measured.latencies_ms, 99)),
    note: r.note,
    ...(r.detail ? { detail: r.detail } : {}),
  };
}

function fmt(n: number): string {
  return Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : "-";
}

function round(n: number): number | null {
  return Number.isFinite(n) ? Math.round(n * 100) / 100 : null;
}
