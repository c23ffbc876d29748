/**
 * `bun test/bench/lean/profile-summary.ts <file.cpuprofile> [filter]`: where a `bun --cpu-prof` run
 * spent its time: self time by function and by file, and inclusive time of the functions whose
 * file or name matches `filter` (a regex, default the request path's files).
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, filterText] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [filter]");
const filter = new RegExp(filterText ?? "src/http/|src/api/|src/security/|lib/log|lib/redact|hono|zod|jose|monitoring/metrics|prom-client");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<number, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
});

const short = (url: string) => url.replace(/^.*\/work\/main\//, "").replace(/^.*node_modules\//, "nm/");
const label = (n: Node) => `${n.callFrame.functionName || "(anon)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

const selfBy = new Map<string, number>();
const fileBy = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  selfBy.set(label(n), (selfBy.get(label(n)) ?? 0) + t);
  const f = short(n.callFrame.url) || `(${n.callFrame.functionName})`;
  fileBy.set(f, (fileBy.get(f) ?? 0) + t);
  // Inclusive: each distinct matching frame on the stack once.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur)!;
    const l = label(node);
    if (!seen.has(l) && filter.test(l)) {
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + t);
    }
  }
}

const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k);
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1e6).toFixed(2)} s sampled`);
console.log("\nself time by file:");
for (const [k, t] of top(fileBy, 30)) console.log(`${pct(t)}  ${k}`);
console.log("\nself time by function:");
for (const [k, t] of top(selfBy, 40)) console.log(`${pct(t)}  ${k}`);
console.log(`\ninclusive time (matching ${filter}):`);
for (const [k, t] of top(inclusive, 60)) console.log(`${pct(t)}  ${k}`);
