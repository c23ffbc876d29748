import type { Db } from "../../lib/db";
import { isAsset, type Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";
import { rangeOf } from "./transactions";

/**
 * Counts and sums for operators, computed from the ledger when asked (no counters to drift): per
 * day (journals and their postings: every movement booked, by kind and asset), per network (payouts:
 * wallet and chama withdrawals by where they go) and per status (withdrawals, transfers, deposits,
 * chama withdrawals). Bounded in cost: a range covers at most STATS_RANGE_MAX_DAYS, read through
 * each table's created_at index, under a statement timeout. Sums are exact decimals per asset.
 */
export const STATS_RANGE_DEFAULT_DAYS = 30;
export const STATS_RANGE_MAX_DAYS = 92;
const STATEMENT_TIMEOUT_MS = 10_000;

const fmt = (minor: string, asset: string) => (isAsset(asset) ? formatAmount(BigInt(minor), asset as Asset) : minor);

async function bounded<T>(db: Db, run: (sql: Db) => Promise<T>): Promise<T> {
  return db.begin(async (sql) => {
    await sql`select set_config('statement_timeout', ${String(STATEMENT_TIMEOUT_MS)}, true)`;
    return run(sql as unknown as Db);
  }) as Promise<T>;
}

type Range = { from?: string | undefined; to?: string | undefined };

/** Every journal booked per UTC day, kind and asset: how many, and how much moved (the sum of its movements). */
export async function dailyStats(db: Db, q: Range) {
  const { from, to } = rangeOf(q, STATS_RANGE_DEFAULT_DAYS, STATS_RANGE_MAX_DAYS);
  const rows = await bounded(db, (sql) => sql`
    select to_char(date_trunc('day', j.created_at at time zone 'UTC'), 'YYYY-MM-DD') as day, j.kind, j.asset,
      count(distinct j.journal_id)::int as count, coalesce(sum(j.amount), 0)::text as amount
    from movements j
    where j.created_at >= ${from} and j.created_at < ${to}
    group by 1, 2, 3 order by 1, 2, 3`);
  return {
    range: { from: from.toISOString(), to: to.toISOString() },
    items: rows.map((r) => ({ day: r.day as string, kind: r.kind as string, asset: r.asset as string, count: r.count as number, amount: fmt(r.amount as string, r.asset as string) })),
  };
}

/** Payouts (wallet and chama withdrawals) per network (a chain, or the kind of bank destination), asset and status. */
export async function networkStats(db: Db, q: Range) {
  const { from, to } = rangeOf(q, STATS_RANGE_DEFAULT_DAYS, STATS_RANGE_MAX_DAYS);
  const rows = await bounded(db, (sql) => sql`
    select network, asset, status, count(*)::int as count, sum(amount)::text as amount from (
      select coalesce(destination->'masked'->>'network', destination->'masked'->>'type', 'unknown') as network, asset, status, amount
        from withdrawals where created_at >= ${from} and created_at < ${to}
      union all
      select coalesce(destination->'masked'->>'network', destination->'masked'->>'type', 'unknown'), asset, status, amount
        from chama_withdrawals where created_at >= ${from} and created_at < ${to}
    ) w group by 1, 2, 3 order by 1, 2, 3`);
  return {
    range: { from: from.toISOString(), to: to.toISOString() },
    items: rows.map((r) => ({ network: r.network as string, asset: r.asset as string, status: r.status as string, count: r.count as number, amount: fmt(r.amount as string, r.asset as string) })),
  };
}

/** Money objects with a status per kind, status and asset: withdrawals, chama withdrawals, transfers (and contributions), deposits. */
export async function statusStats(db: Db, q: Range) {
  const { from, to } = rangeOf(q, STATS_RANGE_DEFAULT_DAYS, STATS_RANGE_MAX_DAYS);
  const rows = await bounded(db, (sql) => sql`
    select kind, status, asset, count(*)::int as count, sum(amount)::text as amount from (
      select 'withdrawal' as kind, status, asset, amount from withdrawals where created_at >= ${from} and created_at < ${to}
      union all
      select 'chama_withdrawal', status, asset, amount from chama_withdrawals where created_at >= ${from} and created_at < ${to}
      union all
      select case when to_chama_id is null then 'transfer' else 'contribution' end, status, asset, amount from transfers where created_at >= ${from} and created_at < ${to}
      union all
      select 'deposit', status, asset, amount from deposits where created_at >= ${from} and created_at < ${to}
    ) o group by 1, 2, 3 order by 1, 2, 3`);
  return {
    range: { from: from.toISOString(), to: to.toISOString() },
    items: rows.map((r) => ({ kind: r.kind as string, status: r.status as string, asset: r.asset as string, count: r.count as number, amount: fmt(r.amount as string, r.asset as string) })),
  };
}
