import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";

/**
 * A lint over the SQL in src/, actors/ and lib/: a number sent as text (`seq::text`, so JavaScript
 * gets it whole) must never be what a query sorts or compares by. `select seq::text … order by seq`
 * sorts by the text column of the select list, where "10" comes before "9", and cursor pages skip
 * records for good (the chama audit log did). Sort by the table's column (`a.seq`) instead.
 * A heuristic, not a parser: it reads each `order by` against the select list just before it.
 */
const ROOT = new URL("../..", import.meta.url).pathname;
const FOLDERS = ["src", "actors", "lib"];

interface Finding {
  where: string;
  what: string;
}

/** Names a select list produces as text: `x::text`, `t.x::text` (→ x), `expr::text as name` (→ name). */
function textColumns(selectList: string): Set<string> {
  const names = new Set<string>();
  for (const m of selectList.matchAll(/(?:\b[a-z_][\w]*\.)?\b([a-z_][\w]*)::text(?:\s+as\s+([a-z_][\w]*))?/gi)) names.add((m[2] ?? m[1]!).toLowerCase());
  for (const m of selectList.matchAll(/\)::text\s+as\s+([a-z_][\w]*)/gi)) names.add(m[1]!.toLowerCase());
  return names;
}

function findTextOrdering(source: string, file: string): Finding[] {
  const findings: Finding[] = [];
  const lineOf = (at: number) => source.slice(0, at).split("\n").length;
  for (const m of source.matchAll(/order\s+by\s+([^`;]*?)(?=\s+limit\b|\s+offset\b|\s+rows\b|`|;|\)|$)/gis)) {
    const at = m.index!;
    const select = source.toLowerCase().lastIndexOf("select", at);
    if (select < 0 || at - select > 3_000) continue;
    const text = textColumns(source.slice(select, at));
    for (const term of m[1]!.split(",")) {
      const name = term.trim().replace(/\s+(asc|desc)\b.*$/is, "").replace(/\s+nulls\s+(first|last)$/i, "").trim();
      if (/^[a-z_][\w]*$/i.test(name) && text.has(name.toLowerCase())) findings.push({ where: `${file}:${lineOf(at)}`, what: `order by ${name}, selected as text` });
    }
  }
  // A cast to text on the left of an ordering comparison: compared as text.
  for (const m of source.matchAll(/::text\s*(<=|>=|<|>)(?!>)/g)) findings.push({ where: `${file}:${lineOf(m.index!)}`, what: `text compared with ${m[1]}` });
  return findings;
}

describe("numbers are sorted and compared as numbers", () => {
  test("the lint finds the audit log's old query (ordered by its text alias) and passes the fixed one", () => {
    const broken = "db`select seq::text, actor from chama_audit where chama_id = ${id} ${cursor ? db`and seq < ${cursor}` : db``} order by seq desc limit ${n}`";
    expect(findTextOrdering(broken, "old.ts").map((f) => f.what)).toEqual(["order by seq, selected as text"]);
    const fixed = "db`select a.seq::text as seq, a.actor from chama_audit a where a.chama_id = ${id} order by a.seq desc limit ${n}`";
    expect(findTextOrdering(fixed, "new.ts")).toEqual([]);
    expect(findTextOrdering("db`select x from t where t.seq::text > ${c}`", "cmp.ts").map((f) => f.what)).toEqual(["text compared with >"]);
  });

  test("no query in src/, actors/ or lib/ sorts or compares by a column it selects as text", () => {
    const findings: Finding[] = [];
    for (const folder of FOLDERS) {
      for (const file of new Bun.Glob("**/*.{ts,sql}").scanSync(`${ROOT}${folder}`)) {
        findings.push(...findTextOrdering(readFileSync(`${ROOT}${folder}/${file}`, "utf8"), `${folder}/${file}`));
      }
    }
    expect(findings).toEqual([]);
  });
});
