import { COLORS, stackedBars, timeChart, type Chart } from "../charts";
import { card, h, ms, pill, replace, table } from "../dom";
import type { Alert, DailyRow, Health, NetworkRow, Page, Stats } from "../types";
import type { Ctx, View } from "../ui";

/**
 * The live overview: payments per second (from the ledger, through /admin/stats/daily over the few
 * seconds since the last look), outbox and monitoring lag (/admin/health), the payout pipeline per
 * network (/admin/stats/network), open alerts (/admin/alerts) and movements per day. Each refreshes
 * on its own clock while the view is open and the tab visible.
 */
const RATE_EVERY_MS = 3_000;
const HEALTH_EVERY_MS = 5_000;
const PIPELINE_EVERY_MS = 10_000;
const ALERTS_EVERY_MS = 15_000;
const DAILY_EVERY_MS = 60_000;
/** Five minutes of points at one every three seconds. */
const LIVE_POINTS = 100;
const ALERT_DAYS = 14;
/** Pages of 200 read for the alert counts and chart, at most. */
const ALERT_PAGES_MAX = 10;
const DAY_S = 86_400;

export const SEVERITY_COLORS = { low: COLORS.slate, medium: COLORS.amber, high: COLORS.red } as const;
/** The order statuses read in, from start to end; others follow. */
export const PAYOUT_STATUS_ORDER = ["requested", "manual_review", "pending_approval", "approved", "checked", "signed", "processing", "broadcast", "confirmed", "completed", "failed", "cancelled", "rejected", "returned"];

export const overview: View = (el, ctx) => {
  const tiles = {
    payments: tile("Payments / s", "payments"),
    movements: tile("Movements / s", "movements"),
    alerts: tile("Open alerts", "alerts"),
    held: tile("Held payouts", "held"),
    lag: tile("Outbox lag", "lag"),
    health: tile("Node health", "health"),
  };
  const rateHost = h("div", { class: "chart" });
  const lagHost = h("div", { class: "chart" });
  const pipeline = h("div", { data: { test: "pipeline" } }, h("p", { class: "empty", text: "Loading…" }));
  const severityBars = h("div", { class: "hbars" });
  const alertsHost = h("div", { class: "chart" });
  const dailyHost = h("div", { class: "chart" });
  const healthList = h("div", {}, h("p", { class: "empty", text: "Loading…" }));

  el.append(
    h("div", { class: "tiles" }, Object.values(tiles).map((t) => t.el)),
    h(
      "div",
      { class: "grid-2" },
      card("Payments per second", h("p", { class: "hint", text: "Ledger journals booked, per second, over the last five minutes (live)." }), rateHost),
      card("Outbox and monitoring lag", h("p", { class: "hint", text: "Age of the oldest event not yet relayed or worked, and how far monitoring is behind." }), lagHost),
      card("Payout pipeline per network", h("p", { class: "hint", text: "Wallet and chama withdrawals of the last 30 days, by where they go and their status." }), pipeline),
      card("Alerts by severity", h("p", { class: "hint", text: `Unresolved now, and raised per day over the last ${ALERT_DAYS} days.` }), severityBars, alertsHost),
      card("Movements per day", h("p", { class: "hint", text: "Journals booked per day and kind, last 30 days." }), dailyHost),
      card("Health", healthList),
    ),
  );

  const charts: { destroy(): void }[] = [];
  const rateChart = timeChart(rateHost, { series: [{ label: "payments/s", color: COLORS.blue, fill: true }, { label: "all movements/s", color: COLORS.teal }], yValue: rate, windowSeconds: LIVE_POINTS * (RATE_EVERY_MS / 1000) });
  const lagChart = timeChart(lagHost, {
    series: [
      { label: "relay lag", color: COLORS.violet },
      { label: "outbox oldest", color: COLORS.amber },
      { label: "monitoring lag", color: COLORS.pink },
    ],
    yValue: (v) => ms(v),
    yAtLeast: 100,
    windowSeconds: LIVE_POINTS * (HEALTH_EVERY_MS / 1000),
  });
  const alertChart = stackedBars(alertsHost, (["low", "medium", "high"] as const).map((s) => ({ label: s, color: SEVERITY_COLORS[s] })), DAY_S);
  let dailyChart: Chart | undefined;
  charts.push(rateChart, lagChart, alertChart);

  // Payments per second: each look asks for what was booked since the server's end of the last one.
  const live = { xs: [] as number[], payments: [] as number[], movements: [] as number[] };
  let since = new Date(Date.now() - RATE_EVERY_MS).toISOString();
  ctx.every(RATE_EVERY_MS, async () => {
    const stats = await ctx.api.get<Stats<DailyRow>>("/admin/stats/daily", { from: since });
    const seconds = Math.max(0.001, (Date.parse(stats.range.to) - Date.parse(stats.range.from)) / 1000);
    since = stats.range.to;
    const payments = stats.items.filter((r) => r.kind === "payment").reduce((n, r) => n + r.count, 0) / seconds;
    const movements = stats.items.reduce((n, r) => n + r.count, 0) / seconds;
    push(live.xs, Date.parse(stats.range.to) / 1000);
    push(live.payments, payments);
    push(live.movements, movements);
    rateChart.set([live.xs, live.payments, live.movements]);
    tiles.payments.set(rate(payments));
    tiles.movements.set(rate(movements));
  });

  const lag = { xs: [] as number[], relay: [] as (number | null)[], outbox: [] as (number | null)[], monitoring: [] as (number | null)[] };
  ctx.every(HEALTH_EVERY_MS, async () => {
    const health = await ctx.api.get<Health>("/admin/health");
    const detail = (name: string, key: string) => {
      const v = health.components.find((c) => c.name === name)?.details?.[key];
      return typeof v === "number" ? v : null;
    };
    const relay = detail("jetstream_relay", "lagMs");
    const outbox = detail("outbox", "oldestPendingMs");
    push(lag.xs, Date.parse(health.checkedAt) / 1000);
    push(lag.relay, relay);
    push(lag.outbox, outbox);
    push(lag.monitoring, detail("monitoring", "lagMs"));
    lagChart.set([lag.xs, lag.relay, lag.outbox, lag.monitoring] as never);
    const backlog = (detail("jetstream_relay", "backlog") ?? 0) + (detail("outbox", "sagaPending") ?? 0) + (detail("outbox", "depositPending") ?? 0) + (detail("outbox", "payoutPending") ?? 0);
    tiles.lag.set(ms(Math.max(relay ?? 0, outbox ?? 0)), `${backlog} pending`);
    tiles.health.set(health.status, `${health.components.filter((c) => c.state === "ok").length} of ${health.components.filter((c) => c.state !== "not_configured").length} parts ok`, `state-${health.status}`);
    replace(
      healthList,
      table<Health["components"][number]>(
        [
          { label: "Part", cell: (c) => c.name },
          { label: "State", cell: (c) => pill(c.state, "state") },
          { label: "Latency", cell: (c) => ms(c.latencyMs), class: "num" },
          { label: "Details", cell: (c) => Object.entries(c.details ?? {}).map(([k, v]) => `${k}: ${v}`).join(" · ") || "—", class: "muted" },
        ],
        health.components,
      ),
    );
  });

  ctx.every(PIPELINE_EVERY_MS, async () => {
    const stats = await ctx.api.get<Stats<NetworkRow>>("/admin/stats/network");
    replace(pipeline, pipelineTable(stats.items));
    tiles.held.set(String(stats.items.filter((r) => r.status === "manual_review").reduce((n, r) => n + r.count, 0)), "in manual review");
  });

  ctx.every(ALERTS_EVERY_MS, async () => {
    const since = Date.now() - ALERT_DAYS * DAY_S * 1000;
    const recent: Alert[] = [];
    const unresolved: Alert[] = [];
    for (const status of ["open", "investigating"] as const) unresolved.push(...(await pages<Alert>(ctx, "/admin/alerts", { status })));
    recent.push(...(await pages<Alert>(ctx, "/admin/alerts", {}, (a) => Date.parse(a.createdAt) >= since)));
    const open = unresolved.filter((a) => a.status === "open").length;
    tiles.alerts.set(String(open), `${unresolved.length - open} investigating`, open ? "warn" : undefined);
    replace(severityBars, hbars((["high", "medium", "low"] as const).map((s) => ({ label: s, value: unresolved.filter((a) => a.severity === s).length, cls: `sev-${s}` }))));
    const today = Math.floor(Date.now() / 1000 / DAY_S) * DAY_S;
    const xs = Array.from({ length: ALERT_DAYS }, (_, i) => today - (ALERT_DAYS - 1 - i) * DAY_S);
    const counts = (["low", "medium", "high"] as const).map((s) =>
      xs.map((x) => recent.filter((a) => a.severity === s && Math.floor(Date.parse(a.createdAt) / 1000 / DAY_S) * DAY_S === x).length),
    );
    alertChart.set(xs, counts);
  });

  ctx.every(DAILY_EVERY_MS, async () => {
    const stats = await ctx.api.get<Stats<DailyRow>>("/admin/stats/daily");
    const kinds = [...new Set(stats.items.map((r) => r.kind))].sort();
    const end = Math.floor(Date.parse(stats.range.to) / 1000 / DAY_S) * DAY_S;
    const xs = Array.from({ length: 30 }, (_, i) => end - (29 - i) * DAY_S);
    const byDay = (kind: string) => xs.map((x) => stats.items.filter((r) => r.kind === kind && Date.parse(`${r.day}T00:00:00Z`) / 1000 === x).reduce((n, r) => n + r.count, 0));
    // The series are the kinds seen: the chart is made again when they change.
    dailyChart?.destroy();
    replace(dailyHost);
    if (!kinds.length) {
      dailyHost.append(h("p", { class: "empty", text: "Nothing booked in the last 30 days." }));
      return;
    }
    dailyChart = timeChart(dailyHost, { series: kinds.map((k) => ({ label: k })), yValue: (v) => (Number.isInteger(v) ? String(v) : "") });
    dailyChart.set([xs, ...kinds.map(byDay)]);
  });

  return () => {
    for (const c of charts) c.destroy();
    dailyChart?.destroy();
  };
};

function push<T>(values: T[], value: T): void {
  values.push(value);
  if (values.length > LIVE_POINTS) values.shift();
}

function rate(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Every page of a list, newest first, while `keep` holds (at most ALERT_PAGES_MAX pages). */
async function pages<T>(ctx: Ctx, path: string, query: Record<string, string>, keep: (item: T) => boolean = () => true): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < ALERT_PAGES_MAX; page++) {
    const res: Page<T> = await ctx.api.get<Page<T>>(path, { ...query, limit: 200, cursor });
    const kept = res.items.filter(keep);
    all.push(...kept);
    if (kept.length < res.items.length || !res.nextCursor) break;
    cursor = res.nextCursor;
  }
  return all;
}

function tile(label: string, name: string) {
  const value = h("strong", { text: "…" });
  const note = h("small", { text: "" });
  const el = h("div", { class: "tile", data: { tile: name } }, h("span", { text: label }), value, note);
  return {
    el,
    set(text: string, detail = "", cls?: string) {
      value.textContent = text;
      note.textContent = detail;
      el.className = `tile${cls ? ` ${cls}` : ""}`;
    },
  };
}

/** Horizontal bars drawn with the DOM (a width set through CSSOM, which the CSP allows). */
export function hbars(rows: { label: string; value: number; cls: string }[]): HTMLElement {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return h(
    "div",
    { class: "hbar-list" },
    rows.map((r) => {
      const bar = h("span", { class: `hbar ${r.cls}` });
      bar.style.width = `${(r.value / max) * 100}%`;
      return h("div", { class: "hbar-row" }, h("span", { class: "hbar-label", text: r.label }), h("span", { class: "hbar-track" }, bar), h("span", { class: "num", text: String(r.value) }));
    }),
  );
}

/** Networks down, statuses across (in pipeline order), counts in the cells; held and failed stand out. */
export function pipelineTable(rows: NetworkRow[]): HTMLElement {
  if (!rows.length) return h("p", { class: "empty", text: "No payouts in the last 30 days." });
  const statuses = [...new Set(rows.map((r) => r.status))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const networks = [...new Set(rows.map((r) => r.network))].sort();
  const count = (network: string, status: string) => rows.filter((r) => r.network === network && r.status === status).reduce((n, r) => n + r.count, 0);
  return h(
    "table",
    { class: "grid pipeline" },
    h("thead", {}, h("tr", {}, h("th", { text: "Network" }), statuses.map((s) => h("th", { class: "num" }, pill(s))), h("th", { class: "num", text: "Total" }))),
    h(
      "tbody",
      {},
      networks.map((n) =>
        h(
          "tr",
          { data: { network: n } },
          h("td", { text: n }),
          statuses.map((s) => {
            const c = count(n, s);
            return h("td", { class: `num${c && (s === "manual_review" || s === "failed") ? " hot" : ""}${c ? "" : " muted"}`, text: String(c) });
          }),
          h("td", { class: "num", text: String(statuses.reduce((sum, s) => sum + count(n, s), 0)) }),
        ),
      ),
    ),
  );
}

function rank(status: string): number {
  const i = PAYOUT_STATUS_ORDER.indexOf(status);
  return i < 0 ? 99 : i;
}

