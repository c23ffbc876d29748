import type { Db } from "../../lib/db";

export interface Mismatch {
  kind: "journal_unbalanced" | "posting_orphan" | "posted_differs" | "held_differs" | "negative_available" | "asset_differs";
  journalId?: string;
  walletId?: string;
  asset?: string;
  expected?: string;
  actual?: string;
}

/**
 * Recomputes the books from the postings alone and compares them with what the actors wrote.
 * Every journal must sum to zero per asset and every posting belong to a journal; every wallet's posted balance must equal the sum of
 * its postings, its held amount the sum of its open withdrawals, and available must not be negative.
 * Chamas are accounts like wallets and are held to the same rules (reported with their id as walletId).
 */
export async function verifyLedger(db: Db, limit = 1000): Promise<{ ok: boolean; mismatches: Mismatch[] }> {
  const [unbalanced, orphans, posted, held, negative, assets, chamaPosted, chamaHeld, chamaNegative] = await Promise.all([
    db`select journal_id, asset, sum(amount)::text as total from postings group by journal_id, asset having sum(amount) <> 0 limit ${limit}`,
    db`select distinct p.journal_id from postings p left join journals j on j.id = p.journal_id where j.id is null limit ${limit}`,
    db`select w.id, w.posted::text as expected, coalesce(p.total, 0)::text as actual
       from wallets w left join (select account, sum(amount) as total from postings where account not like 'system:%' group by account) p
         on p.account = w.id::text
       where w.posted <> coalesce(p.total, 0) limit ${limit}`,
    db`select w.id, w.held::text as expected, coalesce(h.total, 0)::text as actual
       from wallets w left join (select wallet_id, sum(amount) as total from withdrawals where status in ('requested', 'processing') group by wallet_id) h
         on h.wallet_id = w.id
       where w.held <> coalesce(h.total, 0) limit ${limit}`,
    db`select id, (posted - held)::text as actual from wallets where posted - held < 0 limit ${limit}`,
    db`select distinct p.account, p.asset, a.asset as expected
       from postings p join (select id, asset from wallets union all select id, asset from chamas) a on a.id::text = p.account
       where p.asset <> a.asset limit ${limit}`,
    db`select c.id, c.posted::text as expected, coalesce(p.total, 0)::text as actual
       from chamas c left join (select account, sum(amount) as total from postings where account not like 'system:%' group by account) p
         on p.account = c.id::text
       where c.posted <> coalesce(p.total, 0) limit ${limit}`,
    db`select c.id, c.held::text as expected, coalesce(h.total, 0)::text as actual
       from chamas c left join (select chama_id, sum(amount) as total from chama_withdrawals
           where status in ('pending_approval', 'manual_review', 'approved', 'processing') group by chama_id) h
         on h.chama_id = c.id
       where c.held <> coalesce(h.total, 0) limit ${limit}`,
    db`select id, (posted - held)::text as actual from chamas where posted - held < 0 limit ${limit}`,
  ]);
  const mismatches: Mismatch[] = [
    ...unbalanced.map((r) => ({ kind: "journal_unbalanced" as const, journalId: r.journal_id, asset: r.asset, expected: "0", actual: r.total })),
    ...orphans.map((r) => ({ kind: "posting_orphan" as const, journalId: r.journal_id })),
    ...[...posted, ...chamaPosted].map((r) => ({ kind: "posted_differs" as const, walletId: r.id, expected: r.expected, actual: r.actual })),
    ...[...held, ...chamaHeld].map((r) => ({ kind: "held_differs" as const, walletId: r.id, expected: r.expected, actual: r.actual })),
    ...[...negative, ...chamaNegative].map((r) => ({ kind: "negative_available" as const, walletId: r.id, expected: ">= 0", actual: r.actual })),
    ...assets.map((r) => ({ kind: "asset_differs" as const, walletId: r.account, expected: r.expected, actual: r.asset })),
  ];
  return { ok: mismatches.length === 0, mismatches };
}
