import type { Db } from "../../lib/db";

export interface Mismatch {
  /**
   * `movement_stray`: a movement touches an aggregate's account that is not the aggregate that wrote it
   * (every movement moves money between system accounts and its own aggregate's account only, so
   * an aggregate's history is its own movements). `journal_unbalanced` and `posting_orphan` cannot
   * happen since the ledger stores movements (migration 021); they stay for older reports.
   */
  kind: "journal_unbalanced" | "posting_orphan" | "movement_stray" | "posted_differs" | "held_differs" | "negative_available" | "asset_differs";
  journalId?: string;
  walletId?: string;
  asset?: string;
  expected?: string;
  actual?: string;
}

/** How far a check has come (and, at the end, what it looked at). */
export interface VerifyProgress {
  stage: "journals" | "wallets" | "chamas" | "done";
  wallets: { checked: number; total: number };
  chamas: { checked: number; total: number };
  /** Every posting in the ledger (all were summed by journal), and the journals they make. */
  postings: number;
  journals: number;
  /** Found so far; the report lists at most `limit` of them. */
  mismatches: number;
  elapsedMs: number;
}

export type VerifySummary = Omit<VerifyProgress, "stage">;

export interface VerifyOptions {
  /** Mismatches listed at most (all are counted). */
  limit?: number;
  /** Wallets (or chamas) read and checked per query: what bounds the memory a check takes. */
  pageSize?: number;
  /** Called after each stage and each page. */
  onProgress?: (progress: VerifyProgress) => void;
}

export interface VerifyReport {
  ok: boolean;
  mismatches: Mismatch[];
  summary: VerifySummary;
}

const LIMIT_DEFAULT = 1_000;
const PAGE_SIZE_DEFAULT = 1_000;
/** Withdrawals whose amount is held, per kind of account. */
const WALLET_HOLDING = ["requested", "processing", "manual_review"];
/** Journals that may take a wallet below zero: disputes, and refunds made at Stripe directly (src/workers/deposit-saga.ts). */
const FORCED_KINDS = ["dispute", "deposit_refund_forced"];
const CHAMA_HOLDING = ["pending_approval", "manual_review", "approved", "processing"];

/**
 * Recomputes the books from the postings alone and compares them with what the actors wrote.
 * Every journal must sum to zero per asset and every posting belong to a journal; every wallet's
 * posted balance must equal the sum of its postings, its held amount the sum of its open
 * withdrawals, and available must not be negative (a wallet's only as far as card disputes took
 * it: its debt). Chamas are accounts like wallets and are held to
 * the same rules (reported with their id as walletId).
 *
 * Memory stays bounded however large the ledger: journals are summed by Postgres (which spills to
 * disk), and only their unbalanced ones come back (at most `limit`); wallets and chamas are read a
 * page at a time in id order, each page with its own sums. The report lists at most `limit`
 * mismatches and counts them all.
 */
export async function checkLedger(db: Db, options: VerifyOptions = {}): Promise<VerifyReport> {
  const limit = options.limit ?? LIMIT_DEFAULT;
  const pageSize = options.pageSize ?? PAGE_SIZE_DEFAULT;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new Error(`pageSize must be a positive integer, not ${pageSize}`);
  const started = performance.now();
  const mismatches: Mismatch[] = [];
  let found = 0;
  const add = (m: Mismatch) => {
    found++;
    if (mismatches.length < limit) mismatches.push(m);
  };

  const [totals] = await db`select (select count(*) from wallets)::text as wallets, (select count(*) from chamas)::text as chamas`;
  const progress: VerifyProgress = {
    stage: "journals",
    wallets: { checked: 0, total: Number(totals!.wallets) },
    chamas: { checked: 0, total: Number(totals!.chamas) },
    postings: 0,
    journals: 0,
    mismatches: 0,
    elapsedMs: 0,
  };
  const report = (stage: VerifyProgress["stage"]) => {
    progress.stage = stage;
    progress.mismatches = found;
    progress.elapsedMs = Math.round(performance.now() - started);
    options.onProgress?.({ ...progress, wallets: { ...progress.wallets }, chamas: { ...progress.chamas } });
  };
  report("journals");

  // One pass over the movements. Each is balanced by construction (one amount, from one account
  // to another); what can still be wrong is a movement touching an aggregate's account that is not
  // its own. count(*) over () is taken before the limit: all are counted, `limit` are listed.
  const [counts] = await db`select count(*)::text as movements, count(*) filter (where leg = 0)::text as journals from movements`;
  progress.postings = Number(counts!.movements) * 2;
  progress.journals = Number(counts!.journals);
  const strays = await db`select journal_id, wallet_id, (count(*) over ())::text as found from movements
    where (debit not like 'system:%' and debit <> wallet_id::text) or (credit not like 'system:%' and credit <> wallet_id::text)
    limit ${limit}`;
  for (const r of strays) add({ kind: "movement_stray", journalId: r.journal_id, walletId: r.wallet_id });
  if (strays.length) found += Number(strays[0]!.found) - strays.length;
  report("journals");

  for (const kind of ["wallets", "chamas"] as const) {
    let after: string | undefined;
    // Keyset pages in id order: each is one bounded query, whatever the table's size. The loop
    // ends at the first short page; the bound only guards against a table growing without end.
    const pagesMax = Math.ceil(progress[kind].total / pageSize) + 1_000;
    for (let page = 0; page < pagesMax; page++) {
      const rows = await accountsPage(db, kind, after, pageSize);
      for (const r of rows) check(r, add);
      progress[kind].checked += rows.length;
      report(kind);
      if (rows.length < pageSize) break;
      after = rows[rows.length - 1]!.id;
    }
  }
  report("done");
  const { stage: _, ...summary } = progress;
  return { ok: found === 0, mismatches, summary };
}

/** The report the admin endpoint gives: whether the books are whole, and what is not. */
export async function verifyLedger(db: Db, limit = LIMIT_DEFAULT): Promise<{ ok: boolean; mismatches: Mismatch[] }> {
  const { ok, mismatches } = await checkLedger(db, { limit });
  return { ok, mismatches };
}

interface AccountRow {
  id: string;
  asset: string;
  posted: string;
  held: string;
  /** The sum of the account's postings, and the assets of any posting not in its own asset. */
  postingsTotal: string;
  otherAssets: string[] | null;
  /** The sum of its withdrawals that hold money. */
  holding: string;
  /**
   * What card disputes (and refunds made at Stripe directly) ever took from it, as a sum of its
   * postings (≤ 0): the only way a wallet's available balance may go below zero (its debt).
   */
  forced: string;
}

/** One page of wallets or chamas after `after` (by id), each with its sums from the ledger. */
async function accountsPage(db: Db, kind: "wallets" | "chamas", after: string | undefined, pageSize: number): Promise<AccountRow[]> {
  const from = after ? db`where id > ${after}` : db``;
  const rows =
    kind === "wallets"
      ? await db`select a.id, a.asset, a.posted::text as posted, a.held::text as held,
            coalesce(p.total, 0)::text as postings_total, p.other_assets, coalesce(h.total, 0)::text as holding, coalesce(f.total, 0)::text as forced
          from (select id, asset, posted, held from wallets ${from} order by id limit ${pageSize}) a
          left join lateral (${sums(db)}) p on true
          left join lateral (select sum(amount) as total from withdrawals where wallet_id = a.id and status = any(${db.array(WALLET_HOLDING)})) h on true
          left join lateral (select sum(case when m.credit = a.id::text then m.amount else -m.amount end) as total from movements m
            where m.wallet_id = a.id and (m.credit = a.id::text or m.debit = a.id::text) and m.kind = any(${db.array(FORCED_KINDS)})) f on true
          order by a.id`
      : await db`select a.id, a.asset, a.posted::text as posted, a.held::text as held,
            coalesce(p.total, 0)::text as postings_total, p.other_assets, coalesce(h.total, 0)::text as holding
          from (select id, asset, posted, held from chamas ${from} order by id limit ${pageSize}) a
          left join lateral (${sums(db)}) p on true
          left join lateral (select sum(amount) as total from chama_withdrawals where chama_id = a.id and status = any(${db.array(CHAMA_HOLDING)})
            -- paid into a wallet: once processing, its money left for transit (posted out, no longer held)
            and not (status = 'processing' and to_wallet_id is not null)) h on true
          order by a.id`;
  return rows.map((r) => ({ id: r.id, asset: r.asset, posted: r.posted, held: r.held, postingsTotal: r.postings_total, otherAssets: r.other_assets, holding: r.holding, forced: r.forced ?? "0" }));
}

/** The posted total of account `a` from its own movements (one index range), and any asset not its own. */
function sums(db: Db) {
  return db`select sum(case when m.credit = a.id::text then m.amount when m.debit = a.id::text then -m.amount end) as total,
      array_agg(distinct m.asset) filter (where m.asset <> a.asset) as other_assets
    from movements m where m.wallet_id = a.id and (m.credit = a.id::text or m.debit = a.id::text)`;
}

function check(r: AccountRow, add: (m: Mismatch) => void): void {
  if (BigInt(r.posted) !== BigInt(r.postingsTotal)) add({ kind: "posted_differs", walletId: r.id, expected: r.posted, actual: r.postingsTotal });
  if (BigInt(r.held) !== BigInt(r.holding)) add({ kind: "held_differs", walletId: r.id, expected: r.held, actual: r.holding });
  const available = BigInt(r.posted) - BigInt(r.held);
  // Below zero only as far as card disputes took it (a wallet's debt), never otherwise.
  const floor = BigInt(r.forced) < 0n ? BigInt(r.forced) : 0n;
  if (available < floor) add({ kind: "negative_available", walletId: r.id, expected: `>= ${floor}`, actual: available.toString() });
  for (const asset of r.otherAssets ?? []) add({ kind: "asset_differs", walletId: r.id, expected: r.asset, actual: asset });
}
