import uPlot from "uplot";

/**
 * Charts with uPlot (from node_modules, bundled into the page's script): a canvas, no inline
 * styles, nothing fetched. Every chart here is over time, which is what uPlot is made for: x in
 * seconds since the epoch, one array per series.
 */
export const COLORS = {
  blue: "#2563eb",
  teal: "#0d9488",
  amber: "#d97706",
  red: "#dc2626",
  violet: "#7c3aed",
  slate: "#64748b",
  green: "#16a34a",
  pink: "#db2777",
} as const;
const PALETTE = Object.values(COLORS);

export interface SeriesSpec {
  label: string;
  color?: string;
  fill?: boolean;
  /** What the legend shows for a point (default: the value as is). */
  show?: (value: number | null | undefined, index: number) => string;
}

export interface Chart {
  set(data: uPlot.AlignedData): void;
  destroy(): void;
}

interface ChartOptions {
  series: SeriesSpec[];
  height?: number;
  /** Bars, each `barSeconds` wide at its x (a day: 86 400), instead of lines. */
  barSeconds?: number;
  yLabel?: string;
  /** Live: the x axis always shows the last this many seconds up to the newest point. */
  windowSeconds?: number;
  /** The y axis goes at least this high (so a flat zero line is not drawn as a scale of 0 to 1 ms). */
  yAtLeast?: number;
  /** The y axis's tick text. */
  yValue?: (v: number) => string;
}

/** A chart in `host` (which must be in the document, so it has a width); it follows the host's width. */
export function timeChart(host: HTMLElement, options: ChartOptions): Chart {
  const bars = options.barSeconds;
  const opts: uPlot.Options = {
    width: Math.max(240, host.clientWidth),
    height: options.height ?? 200,
    legend: { live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    scales: {
      x: {
        time: true,
        ...(bars
          ? { range: (_u, min, max) => [min - bars / 2, max + bars / 2] as uPlot.Range.MinMax }
          : options.windowSeconds
            ? {
                // From the newest point itself: with one point uPlot would widen the range it passes by years.
                range: (u) => {
                  const xs = u.data[0] as number[];
                  const last = xs.length ? xs[xs.length - 1]! : Date.now() / 1000;
                  return [last - options.windowSeconds!, last] as uPlot.Range.MinMax;
                },
              }
            : {}),
      },
      y: { range: (_u, _min, max) => [0, Math.max(options.yAtLeast ?? 1, max > 0 ? max * 1.15 : 0)] as uPlot.Range.MinMax },
    },
    axes: [
      { stroke: "#475569", grid: { stroke: "#e2e8f0", width: 1 }, ticks: { stroke: "#cbd5e1", width: 1 } },
      {
        stroke: "#475569",
        grid: { stroke: "#e2e8f0", width: 1 },
        ticks: { stroke: "#cbd5e1", width: 1 },
        size: 56,
        ...(options.yLabel ? { label: options.yLabel, labelSize: 18 } : {}),
        ...(options.yValue ? { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => options.yValue!(t)) } : {}),
      },
    ],
    series: [
      {},
      ...options.series.map((s, i): uPlot.Series => {
        const color = s.color ?? PALETTE[i % PALETTE.length]!;
        return {
          label: s.label,
          stroke: color,
          width: bars ? 0 : 2,
          ...(bars ? { fill: color, paths: uPlot.paths.bars!({ size: [0.7, 48], align: 0 }), points: { show: false } } : s.fill ? { fill: `${color}22` } : {}),
          ...(s.show ? { value: (_u: uPlot, v: number | null, _si: number, idx: number | null) => s.show!(v, idx ?? -1) } : {}),
        };
      }),
    ],
  };
  const empty: uPlot.AlignedData = [[], ...options.series.map(() => [])];
  const plot = new uPlot(opts, empty, host);
  const resize = new ResizeObserver(() => {
    const width = Math.max(240, host.clientWidth);
    if (width !== plot.width) plot.setSize({ width, height: plot.height });
  });
  resize.observe(host);
  return {
    set: (data) => plot.setData(data),
    destroy: () => {
      resize.disconnect();
      plot.destroy();
    },
  };
}

/**
 * Counts per time bucket and category drawn as stacked bars: each series is drawn as the sum of
 * itself and every one after it, back to front, so the tops line up; the legend shows the
 * category's own count.
 */
export function stackedBars(host: HTMLElement, categories: { label: string; color: string }[], barSeconds: number, height = 200) {
  let raw: number[][] = [];
  const chart = timeChart(host, {
    barSeconds,
    height,
    series: categories.map((c, i) => ({ label: c.label, color: c.color, show: (_v, idx) => (idx < 0 ? "—" : String(raw[i]?.[idx] ?? 0)) })),
    yValue: (v) => (Number.isInteger(v) ? String(v) : ""),
  });
  return {
    /** `xs` in seconds; `counts[c][i]`: category c's count at xs[i]. */
    set(xs: number[], counts: number[][]) {
      raw = counts;
      const stacked = counts.map((_, c) => xs.map((_x, i) => counts.slice(c).reduce((sum, row) => sum + (row[i] ?? 0), 0)));
      chart.set([xs, ...stacked]);
    },
    destroy: chart.destroy,
  };
}
