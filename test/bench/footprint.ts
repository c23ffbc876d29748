import postgres, { type Sql } from "postgres";
import { ADMIN, tokenFor } from "../support/auth";
import { createTestDatabase } from "../support/db";
import { CLIENT_POOL, envNumber, FUNDING_MINOR, openFundedWallets, pattern1Work, payWork, REDIS_URL, startBenchNode } from "./common";
import type { Work } from "./generator";
import { createPattern1Tables, P1_TABLES, removeRedisKeys } from "./pattern1";
import { fmt, round } from "./report";
import { run, type RunResult } from "./runs";

/**
 * What a payment costs the database and a wallet costs the node, on a quiet database of its own
 * (nobody else writes to it; Postgres is shared, so cluster-wide WAL is filtered to this database):
 *
 * - rows: pg_stat_user_tables (n_tup_ins + n_tup_upd + n_tup_del, and how many updates were HOT)
 *   before and after a short run, per table, divided by the payments acknowledged. Backends flush
 *   their counters lazily (up to 10 s after going idle): the node's pool is asked to flush
 *   (pg_stat_force_next_flush, node-server.ts /flush-stats), every other idle backend of this
 *   database (the commit lanes' own connections) is ended, which flushes it, and the bench waits
 *   until the totals stop moving. Index entries: each insert and each non-HOT update adds one entry to every b-tree
 *   (or hash) index of its table; partial indexes are counted apart, as if their predicate always
 *   held (an upper bound: most rows do not match them), and a BRIN index as none (it summarises
 *   page ranges).
 * - WAL: pg_walinspect over [before, after]: the records that touch this database's relations plus
 *   the commit records of their transactions (full-page images shown apart); without pg_walinspect,
 *   the cluster-wide pg_current_wal_lsn() difference (an upper bound: others write too).
 * - ceiling: the rows a payment inserted, as bare INSERTs into copies of those tables (LIKE …
 *   INCLUDING ALL: same columns, defaults, checks and indexes; no foreign keys, no triggers), one payment per transaction and BENCH_CEILING_BATCH per transaction: what
 *   this Postgres can take of those rows at all.
 * - memory: BENCH_MEMORY_WALLETS wallets (made in SQL as copies of a wallet opened through the API,
 *   with their own ids), each made a live actor (node-server.ts /load-all), then passivated; JS heap
 *   and RSS after a forced GC at each step.
 *
 * The node runs with MONITORING=off here (unless set otherwise), so the rows are the payment's own;
 * transaction monitoring, when on, writes its own rows after the commit.
 */
const ROWS_SECONDS = envNumber("BENCH_ROWS_SECONDS", 2);
const CEILING_BATCH = Math.floor(envNumber("BENCH_CEILING_BATCH", 100));
const MEMORY_WALLETS = Math.floor(envNumber("BENCH_MEMORY_WALLETS", 100_000));
const ROWS_WALLETS = Math.floor(envNumber("BENCH_WALLETS", 1000));

export interface RowsLine {
  workload: string;
  coffer: boolean;
  payments: number;
  rowsPerPayment: number;
  /** Entries in indexes without a predicate. */
  indexEntriesPerPayment: number;
  /** Entries partial indexes would get if every predicate held: an upper bound (most do not). */
  partialIndexEntriesMax: number;
  walBytesPerPayment: number;
  /** False: the cluster-wide WAL difference (others' writes included), an upper bound. */
  walFiltered: boolean;
  fpiBytesPerPayment: number;
  commitsPerPayment: number;
  perTable: string;
  /** Inserts per payment by table (what the ceiling inserts). */
  inserts: Record<string, number>;
}

export interface Footprint {
  rows?: RowsLine[];
  walNote?: string;
  ceiling?: { name: string; result: RunResult }[];
  memory?: { wallets: number; loaded: number; perWarm_heap: number; perLoaded_heap: number; perLoaded_rss: number; perPassivated_heap: number; perPassivated_rss: number; load_s: number; outcomes: string; objectsPerActor: number; grownTypesPerActor: string };
  json: Record<string, unknown>;
}

interface TableStats {
  ins: number;
  upd: number;
  hot: number;
  del: number;
}

async function tableStats(sql: Sql): Promise<Map<string, TableStats>> {
  await sql`select pg_stat_clear_snapshot()`;
  const rows = await sql`select relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del from pg_stat_user_tables`;
  return new Map(rows.map((r) => [r.relname as string, { ins: Number(r.n_tup_ins), upd: Number(r.n_tup_upd), hot: Number(r.n_tup_hot_upd), del: Number(r.n_tup_del) }]));
}

function total(m: Map<string, TableStats>): number {
  let n = 0;
  for (const s of m.values()) n += s.ins + s.upd + s.del;
  return n;
}

/**
 * Wait until every backend has flushed its counters: the node's pool is told to flush (its
 * /flush-stats), then the totals must stay unchanged for 1.5 s (at most 15 s).
 */
async function settledStats(sql: Sql, flush: () => Promise<void>): Promise<Map<string, TableStats>> {
  await flush();
  let last = await tableStats(sql);
  let lastChange = performance.now();
  const started = performance.now();
  while (performance.now() - started < 15_000) {
    await Bun.sleep(250);
    const now = await tableStats(sql);
    if (total(now) !== total(last)) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange >= 1_500) break;
  }
  return last;
}

interface IndexInfo {
  table: string;
  am: string;
  partial: boolean;
}

async function indexes(sql: Sql): Promise<IndexInfo[]> {
  const rows = await sql`select t.relname as table, am.amname as am, (i.indpred is not null) as partial
    from pg_index i join pg_class t on t.oid = i.indrelid join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam
    join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public'`;
  return rows.map((r) => ({ table: r.table as string, am: r.am as string, partial: r.partial as boolean }));
}

/** Runs whose WAL could not be read record by record (then the cluster-wide difference, an upper bound). */
const walFallbacks: string[] = [];

interface Wal {
  bytes: number;
  fpi: number;
  commits: number;
  filtered: boolean;
}

async function walBetween(sql: Sql, from: string, to: string, walinspect: boolean): Promise<Wal> {
  if (walinspect) {
    const [oid] = await sql`select oid::text as oid from pg_database where datname = current_database()`;
    const pattern = ` rel \\d+/${oid!.oid}/`;
    const [r] = await sql`
      with w as (select xid, resource_manager, record_type, record_length, fpi_length, coalesce(block_ref, '') as block_ref
                 from pg_get_wal_records_info(${from}::pg_lsn, ${to}::pg_lsn)),
           ours as (select * from w where block_ref ~ ${pattern}),
           xids as (select distinct xid from ours where xid <> '0'::xid)
      select (select coalesce(sum(record_length), 0) from ours)::bigint as data,
             (select coalesce(sum(fpi_length), 0) from ours)::bigint as fpi,
             (select coalesce(sum(record_length), 0) from w where resource_manager = 'Transaction' and xid in (select xid from xids))::bigint as commit_bytes,
             (select count(*) from w where resource_manager = 'Transaction' and record_type like 'COMMIT%' and xid in (select xid from xids))::bigint as commits`;
    return { bytes: Number(r!.data) + Number(r!.commit_bytes), fpi: Number(r!.fpi), commits: Number(r!.commits), filtered: true };
  }
  const [r] = await sql`select pg_wal_lsn_diff(${to}::pg_lsn, ${from}::pg_lsn)::bigint as bytes`;
  return { bytes: Number(r!.bytes), fpi: Number.NaN, commits: Number.NaN, filtered: false };
}

async function measureRows(sql: Sql, flush: () => Promise<void>, workload: string, coffer: boolean, tables: (t: string) => boolean, go: () => Promise<RunResult>, idx: IndexInfo[], walinspect: boolean): Promise<RowsLine> {
  const before = await settledStats(sql, flush);
  const [l0] = await sql`select pg_current_wal_flush_lsn()::text as lsn`;
  const r = await go();
  // Read the WAL at once: on a busy server its segments are recycled within seconds.
  const [l1] = await sql`select pg_current_wal_flush_lsn()::text as lsn`;
  let wal: Wal;
  try {
    wal = await walBetween(sql, l0!.lsn, l1!.lsn, walinspect);
  } catch (error) {
    wal = await walBetween(sql, l0!.lsn, l1!.lsn, false);
    walFallbacks.push(`${workload}: ${String((error as Error).message).slice(0, 100)}`);
  }
  const after = await settledStats(sql, flush);
  const n = Math.max(1, r.ok);
  let rows = 0;
  let entries = 0;
  let partialEntries = 0;
  const parts: string[] = [];
  const inserts: Record<string, number> = {};
  for (const [table, a] of after) {
    if (!tables(table)) continue;
    const b = before.get(table) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, hot: a.hot - b.hot, del: a.del - b.del };
    if (d.ins + d.upd + d.del === 0) continue;
    rows += d.ins + d.upd + d.del;
    const own = idx.filter((i) => i.table === table);
    const counted = own.filter((i) => i.am !== "brin");
    entries += (d.ins + (d.upd - d.hot)) * counted.filter((i) => !i.partial).length;
    partialEntries += (d.ins + (d.upd - d.hot)) * counted.filter((i) => i.partial).length;
    if (d.ins) inserts[table] = d.ins / n;
    parts.push(`${table} ${fmt(d.ins / n)}/${fmt(d.upd / n)}${d.hot ? `(${Math.round((100 * d.hot) / Math.max(1, d.upd))}% HOT)` : ""}/${fmt(d.del / n)}`);
  }
  const line: RowsLine = {
    workload,
    coffer,
    payments: r.ok,
    rowsPerPayment: rows / n,
    indexEntriesPerPayment: entries / n,
    partialIndexEntriesMax: partialEntries / n,
    walBytesPerPayment: wal.bytes / n,
    walFiltered: wal.filtered,
    fpiBytesPerPayment: wal.fpi / n,
    commitsPerPayment: wal.commits / n,
    perTable: parts.join(", "),
    inserts,
  };
  console.log(`  ${workload}: ${r.ok} payments (${r.errors} errors), ${fmt(line.rowsPerPayment, 2)} rows, ${fmt(line.indexEntriesPerPayment, 2)} index entries (+ at most ${fmt(line.partialIndexEntriesMax, 2)} in partial indexes), ${fmt(line.walBytesPerPayment, 0)} WAL bytes${wal.filtered ? "" : " (cluster-wide: upper bound)"} per payment; ${line.perTable}`);
  return line;
}

/** Columns of a table with what to insert for each: its default where it has one, a fresh value where a unique index needs it. */
async function insertExprs(sql: Sql, table: string): Promise<{ cols: string[]; exprs: string[] }> {
  const cols = await sql`select column_name, data_type, column_default, is_generated, is_identity from information_schema.columns
    where table_schema = 'public' and table_name = ${table} order by ordinal_position`;
  const uniques = await sql`select array(select a.attname from unnest(i.indkey) k join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k)::text[] as cols
    from pg_index i join pg_class t on t.oid = i.indrelid where t.relname = ${table} and i.indisunique`;
  const byName = new Map(cols.map((c) => [c.column_name as string, c]));
  const fresh = new Set<string>();
  for (const u of uniques) {
    const names = u.cols as string[];
    const withDefault = names.find((n) => String(byName.get(n)?.column_default ?? "").startsWith("nextval("));
    const uuid = names.find((n) => byName.get(n)?.data_type === "uuid");
    const text = names.find((n) => byName.get(n)?.data_type === "text");
    const chosen = withDefault ?? uuid ?? text ?? names[0];
    if (chosen) fresh.add(chosen);
  }
  const out = { cols: [] as string[], exprs: [] as string[] };
  for (const c of cols) {
    const name = c.column_name as string;
    if (c.is_generated === "ALWAYS") continue;
    const def = c.column_default as string | null;
    let expr = `t."${name}"`;
    // Sequences and identities: the copy's own (LIKE … INCLUDING ALL keeps defaults and identities).
    if (def?.startsWith("nextval(") || c.is_identity === "YES") continue;
    else if (fresh.has(name)) {
      const type = c.data_type as string;
      expr = type === "uuid" ? "gen_random_uuid()" : type === "text" || type.startsWith("character") ? "gen_random_uuid()::text" : type.includes("int") ? "(random() * 9e15)::bigint" : `t."${name}"`;
    }
    out.cols.push(`"${name}"`);
    out.exprs.push(expr);
  }
  return out;
}

/**
 * Copies of the tables a payment inserted into (same columns, defaults and indexes; no foreign
 * keys), a template of the rows it inserted, and the one simple query that inserts `per` payments' worth.
 */
async function ceilingQuery(sql: Sql, inserts: Record<string, number>, per: number): Promise<string> {
  const statements: string[] = [];
  for (const [table, perPayment] of Object.entries(inserts)) {
    const k = Math.round(perPayment);
    if (k < 1) continue;
    await sql.unsafe(`drop table if exists "ceil_${table}"; drop table if exists "ceil_tpl_${table}"`);
    await sql.unsafe(`create table "ceil_${table}" (like "${table}" including all)`);
    await sql.unsafe(`create table "ceil_tpl_${table}" as select * from "${table}" order by ctid desc limit ${k}`);
    const { cols, exprs } = await insertExprs(sql, table);
    statements.push(`insert into "ceil_${table}" (${cols.join(", ")}) select ${exprs.join(", ")} from "ceil_tpl_${table}" t${per > 1 ? `, generate_series(1, ${per}) g` : ""}`);
  }
  return statements.join(";\n");
}

export async function footprint(o: { rows: boolean; ceiling: boolean; memory: boolean; seconds: number; warmup: number }): Promise<Footprint> {
  const db = await createTestDatabase("benchquiet");
  let node: Awaited<ReturnType<typeof startBenchNode>> | undefined;
  let sql: Sql | undefined;
  const out: Footprint = { json: {} };
  try {
    node = await startBenchNode(db.url, { MONITORING: process.env.MONITORING ?? "off", ACTORS_MAX: String(Math.max(200_000, MEMORY_WALLETS * 2)), ACTOR_IDLE_MS: "3600000" });
    sql = postgres(db.url, { max: 2, onnotice: () => {} });
    const token = await tokenFor(ADMIN);
    const [hot] = await openFundedWallets(node.baseUrl, token, 1, "quiet-hot");
    if (o.rows) {
      let walinspect = true;
      try {
        await sql`create extension if not exists pg_walinspect`;
      } catch (error) {
        walinspect = false;
        out.walNote = `WAL: pg_walinspect unavailable (${String((error as Error).message).slice(0, 80)}): cluster-wide pg_current_wal_lsn() difference, an upper bound (others' writes included)`;
      }
      if (walinspect) out.walNote = "WAL: pg_walinspect records of this database's relations and their transactions' commit records (other databases on the server excluded)";
      const many = await openFundedWallets(node.baseUrl, token, ROWS_WALLETS, "quiet-many");
      const users = await createPattern1Tables(sql, 1, FUNDING_MINOR);
      const idx = await indexes(sql);
      console.log(`rows, index entries and WAL per payment (quiet database, node MONITORING=${process.env.MONITORING ?? "off"}, ${ROWS_SECONDS}s each):`);
      const coffer = (t: string) => !t.startsWith("p1_") && !t.startsWith("ceil_") && !t.startsWith("bench_");
      const watch = { pids: [node.pid] };
      const lines: RowsLine[] = [];
      const n = node;
      let pinPid = -1;
      const flush = async () => {
        await fetch(`${n.controlUrl}/flush-stats`, { method: "POST" });
        // The node's commit lanes have connections of their own, out of the pool's reach: end
        // every idle backend of this database but ours (a backend flushes its counters as it
        // exits); the node connects again when it next needs to.
        await sql!`select pg_terminate_backend(pid) from pg_stat_activity
                   where datname = current_database() and state = 'idle' and pid <> pg_backend_pid() and pid <> ${pinPid}`;
      };
      // DROP DATABASE (tests on this server do it all the time) forces a checkpoint, which recycles
      // WAL segments within seconds: a temporary physical slot on a connection of our own keeps the
      // WAL from here on until we have read it (dropped with the session, or below).
      const slot = `coffer_bench_${crypto.randomUUID().slice(0, 8)}`;
      const pin = walinspect ? await sql.reserve() : undefined;
      try {
        if (pin) {
          await pin.unsafe(`select pg_create_physical_replication_slot('${slot}', true, true)`);
          pinPid = Number((await pin`select pg_backend_pid() as pid`)[0]!.pid);
        }
      } catch (error) {
        console.log(`  (no temporary replication slot: ${String((error as Error).message).slice(0, 80)}; WAL may be recycled before it is read)`);
      }
      lines.push(await measureRows(sql, flush, "coffer hot wallet, 64 callers", true, coffer, () => run(payWork(n.baseUrl, [hot!], token), { mode: "closed", callers: 64 }, ROWS_SECONDS, 0, watch), idx, walinspect));
      lines.push(await measureRows(sql, flush, `coffer ${ROWS_WALLETS} wallets, 64 callers`, true, coffer, () => run(payWork(n.baseUrl, many, token), { mode: "closed", callers: 64 }, ROWS_SECONDS, 0, watch), idx, walinspect));
      lines.push(await measureRows(sql, flush, "users' Pattern 1, hot wallet, 4 callers", false, (t) => (P1_TABLES as readonly string[]).includes(t), () => run(pattern1Work(db.url, users, 4), { mode: "closed", callers: 4 }, ROWS_SECONDS, 0, watch), idx, walinspect));
      if (pin) {
        await pin.unsafe(`select pg_drop_replication_slot('${slot}') from pg_replication_slots where slot_name = '${slot}'`).catch(() => {});
        pin.release();
      }
      out.rows = lines;
      out.json.rows = lines.map((l) => ({ ...l, rowsPerPayment: round(l.rowsPerPayment), indexEntriesPerPayment: round(l.indexEntriesPerPayment), partialIndexEntriesMax: round(l.partialIndexEntriesMax), walBytesPerPayment: round(l.walBytesPerPayment, 0), fpiBytesPerPayment: round(l.fpiBytesPerPayment, 0), commitsPerPayment: round(l.commitsPerPayment, 4) }));
      if (walFallbacks.length) out.walNote = `${out.walNote}; read as the cluster-wide difference instead (upper bound) for ${walFallbacks.join("; ")}`;
      out.json.wal_note = out.walNote;

      if (o.ceiling) {
        const inserts = lines[0]!.inserts;
        console.log(`machine ceiling: bare INSERTs of a payment's rows (${Object.entries(inserts).filter(([, k]) => Math.round(k) >= 1).map(([t, k]) => `${t} ${Math.round(k)}`).join(", ")}) into copies of those tables:`);
        out.ceiling = [];
        const one = await ceilingQuery(sql, inserts, 1);
        const batch = await ceilingQuery(sql, inserts, CEILING_BATCH);
        const cases: [string, Work, number][] = [
          [`1 payment per transaction, ${CLIENT_POOL} connections`, { kind: "sql", dbUrl: db.url, pool: CLIENT_POOL, query: one, units: 1 }, CLIENT_POOL],
          [`${CEILING_BATCH} payments per transaction, 4 connections`, { kind: "sql", dbUrl: db.url, pool: 4, query: batch, units: CEILING_BATCH }, 4],
        ];
        for (const [name, work, callers] of cases) {
          const r = await run(work, { mode: "closed", callers }, o.seconds, o.warmup, { pids: [], db: sql });
          console.log(`  ${name}: ${fmt(r.rate, 0)} payments/s, p99 ${fmt(r.p99_ms)} ms per transaction${r.errors ? `, ${r.errors} errors: ${r.errorSamples.join("; ")}` : ""}`);
          out.ceiling.push({ name, result: r });
        }
        out.json.ceiling = out.ceiling.map((c) => ({ name: c.name, payments_per_s: round(c.result.rate, 0), p50_ms: round(c.result.p50_ms), p99_ms: round(c.result.p99_ms), errors: c.result.errors }));
      }
    }
    if (o.memory) out.memory = await memory(sql, node.controlUrl, hot!);
    if (out.memory) out.json.memory = out.memory;
  } finally {
    if (o.rows) await removeRedisKeys(REDIS_URL).catch(() => {});
    await node?.stop();
    await sql?.end({ timeout: 5 });
    await db.drop();
  }
  return out;
}

interface MemoryReading {
  actors: number;
  rss: number;
  heapUsed: number;
  jscHeapSize: number;
  jscObjects: number;
  objectTypeCounts?: Record<string, number>;
}

/** The object types that grew most between two readings, e.g. "Object +3.0/actor, Array +2.0/actor". */
function grownTypes(a: MemoryReading, b: MemoryReading, per: number, top = 8): string {
  const before = a.objectTypeCounts ?? {};
  const after = b.objectTypeCounts ?? {};
  return Object.entries(after)
    .map(([type, n]) => [type, n - (before[type] ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([type, d]) => `${type} ${fmt(d / Math.max(1, per), 1)}`)
    .join(", ");
}

async function memory(sql: Sql, controlUrl: string, template: string): Promise<Footprint["memory"]> {
  console.log(`memory: ${MEMORY_WALLETS} wallets copied in SQL from one opened through the API, made live actors (one command each), left idle, then passivated:`);
  const t0 = performance.now();
  // Every column as the template has it, but a fresh id and owner, in the row and in the snapshot.
  const cols = (await sql`select column_name from information_schema.columns where table_schema = 'public' and table_name = 'wallets' and is_generated = 'NEVER' order by ordinal_position`).map((c) => c.column_name as string);
  const exprs = cols.map((c) =>
    c === "id" ? "n.id" : c === "owner_id" ? "n.owner" : c === "snapshot" ? `jsonb_set(jsonb_set(t.snapshot, '{context,walletId}', to_jsonb(n.id::text)), '{context,ownerId}', to_jsonb(n.owner))` : `t."${c}"`,
  );
  const chunk = 20_000;
  for (let done = 0; done < MEMORY_WALLETS; done += chunk) {
    const count = Math.min(chunk, MEMORY_WALLETS - done);
    await sql.unsafe(
      `insert into wallets (${cols.map((c) => `"${c}"`).join(", ")})
       select ${exprs.join(", ")} from wallets t,
         lateral (select gen_random_uuid() as id, 'bench-mem-' || g as owner from generate_series(${done + 1}, ${done + count}) g) n
       where t.id = $1`,
      [template],
    );
  }
  const made_s = (performance.now() - t0) / 1000;
  const control = async (path: string, body?: unknown) => {
    const res = await fetch(controlUrl + path, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
    return (await res.json()) as any;
  };
  await control("/passivate", {});
  const m0 = (await control("/memory")) as MemoryReading;
  const loaded = await control("/load-all", { concurrency: 64 });
  // Just used (machine running, recent outcome kept), then idle (after ACTOR_HIBERNATE_MS).
  const warm = (await control("/memory")) as MemoryReading;
  await control("/hibernate", {});
  const m1 = (await control("/memory")) as MemoryReading;
  const passivated = await control("/passivate", {});
  const m2 = (await control("/memory")) as MemoryReading;
  const n = m1.actors - m0.actors;
  const outcomes = Object.entries(loaded.outcomes as Record<string, number>).map(([k, v]) => `${v}x ${k}`).join(", ");
  const result = {
    wallets: MEMORY_WALLETS,
    loaded: n,
    perWarm_heap: (warm.heapUsed - m0.heapUsed) / Math.max(1, n),
    perLoaded_heap: (m1.heapUsed - m0.heapUsed) / Math.max(1, n),
    perLoaded_rss: (m1.rss - m0.rss) / Math.max(1, n),
    perPassivated_heap: (m2.heapUsed - m0.heapUsed) / Math.max(1, n),
    perPassivated_rss: (m2.rss - m0.rss) / Math.max(1, n),
    load_s: loaded.ms / 1000,
    outcomes,
    objectsPerActor: (m1.jscObjects - m0.jscObjects) / Math.max(1, n),
    grownTypesPerActor: grownTypes(m0, m1, n),
  };
  console.log(
    `  made in ${fmt(made_s, 1)} s; before: ${m0.actors} actors, heap ${mb(m0.heapUsed)}, rss ${mb(m0.rss)}; loaded ${n} in ${fmt(result.load_s, 1)} s (${outcomes}): heap ${mb(warm.heapUsed)} just used, ${mb(m1.heapUsed)} idle (hibernated), rss ${mb(m1.rss)}, ${m1.jscObjects - m0.jscObjects} more objects; ` +
      `passivated ${passivated.dropped}: ${m2.actors} actors, heap ${mb(m2.heapUsed)}, rss ${mb(m2.rss)}`,
  );
  console.log(`  JS objects per loaded actor: ${fmt(result.objectsPerActor, 1)}; most grown types per actor: ${result.grownTypesPerActor}`);
  console.log(`  after passivation, JS objects left per wallet: ${fmt((m2.jscObjects - m0.jscObjects) / Math.max(1, n), 1)}; most grown types: ${grownTypes(m0, m2, n)}`);
  return result;
}

function mb(bytes: number): string {
  return `${fmt(bytes / 1024 / 1024, 1)} MB`;
}
