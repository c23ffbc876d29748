/**
 * A strict reader of the Prometheus text exposition format (0.0.4): what a scrape must look like
 * for Prometheus to take all of it. prom-client has no parser, so this is one that throws, naming
 * the line, on anything Prometheus would refuse or misread: a malformed line, a bad name or label,
 * a bad escape, a value that is not a number, a sample before its TYPE or outside its family's
 * group, a family declared twice, a duplicate series, a histogram whose buckets are not cumulative
 * or whose `+Inf` bucket is not its `_count`.
 */
export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(["counter", "gauge", "histogram", "summary", "untyped"]);
const NUMBER = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const series = new Set<string>();
  const closed = new Set<string>();
  let current: Family | undefined;
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // any other comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) fail("bad metric name");
      if (kind === "TYPE") {
        if (!TYPES.has(rest as MetricType)) fail("unknown type");
        if (families.get(name)?.samples.length || closed.has(name)) fail("TYPE after samples, or a family declared twice");
        if (families.has(name) && families.get(name)!.type !== "untyped") fail("TYPE given twice");
      } else if (families.get(name)?.help !== undefined) {
        fail("HELP given twice");
      }
      const family = families.get(name) ?? { name, type: "untyped" as MetricType, samples: [] };
      if (kind === "TYPE") family.type = rest as MetricType;
      else family.help = unescape(rest, fail, false);
      families.set(name, family);
      if (current && current.name !== name) closed.add(current.name);
      current = family;
      return;
    }
    const sample = parseSample(line, fail);
    const family = familyOf(sample.name, families);
    if (!family) fail("a sample with no TYPE before it");
    if (current !== family) {
      if (closed.has(family!.name)) fail("a family's samples are not together");
      if (current) closed.add(current.name);
      current = family;
    }
    const id = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (series.has(id)) fail("a duplicate series");
    series.add(id);
    family!.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
  return families;
}

/** The family a sample belongs to (`x_bucket`, `x_sum`, `x_count` belong to histogram `x`). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct) return direct;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = m ? families.get(m[1]!) : undefined;
  if (base && (base.type === "histogram" || (base.type === "summary" && m![2] !== "bucket"))) return base;
  return undefined;
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
  if (!m) fail("a sample must start with a metric name");
  const name = m![1]!;
  let at = name.length;
  const labels: Record<string, string> = {};
  if (m![2]) {
    at++;
    for (;;) {
      if (line[at] === "}") {
        at++;
        break;
      }
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
      if (!l) fail("bad label");
      const label = l![1]!;
      if (!LABEL.test(label) || label.startsWith("__")) fail("bad label name");
      if (label in labels) fail("a label given twice");
      at += l![0].length;
      let raw = "";
      for (;;) {
        const c = line[at];
        if (c === undefined) fail("unterminated label value");
        if (c === "\\") {
          raw += c + (line[at + 1] ?? "");
          at += 2;
          continue;
        }
        if (c === '"') break;
        raw += c;
        at++;
      }
      at++;
      labels[label] = unescape(raw, fail, true);
      if (line[at] === ",") at++;
      else if (line[at] !== "}") fail("expected , or } after a label");
    }
  }
  const rest = line.slice(at);
  const v = /^ (\S+)(?: (-?[0-9]+))?$/.exec(rest);
  if (!v) fail("expected one space, a value and an optional timestamp");
  return { name, labels, value: parseValue(v![1]!, fail) };
}

/** A value as Go's ParseFloat reads it (the format's rule): a decimal, or NaN / ±Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string, fail: (why: string) => never): number {
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^\+?inf(inity)?$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (!NUMBER.test(text)) fail(`not a number: ${text}`);
  return Number(text);
}

function unescape(raw: string, fail: (why: string) => never, quotes: boolean): string {
  return raw.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === '"' && quotes) return '"';
    return fail(`bad escape \\${c}`);
  });
}

/** Per label set: buckets with increasing `le`, counts that never go down, `+Inf` = `_count`, a `_sum`. */
function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      g.buckets.push([parseValue(le, (why) => { throw new Error(`${family.name}: le ${why}`); }), s.value]);
    } else if (s.name === `${family.name}_sum`) g.sum = s.value;
    else if (s.name === `${family.name}_count`) g.count = s.value;
    else throw new Error(`${family.name}: a sample ${s.name} that is no bucket, sum or count`);
  }
  for (const [key, g] of groups) {
    const where = `${family.name}${key}`;
    if (g.sum === undefined || g.count === undefined) throw new Error(`${where}: no _sum or _count`);
    if (!g.buckets.length) throw new Error(`${where}: no buckets`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${where}: le not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${where}: bucket counts go down`);
    }
    const last = g.buckets[g.buckets.length - 1]!;
    if (last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket`);
    if (last[1] !== g.count) throw new Error(`${where}: +Inf bucket ${last[1]} is not _count ${g.count}`);
  }
}
