import type { Db } from "../db/client";

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
 */
export async function verifyLedger(db: Db, limit = 1000): Promise<{ ok: boolean; mismatches: Mismatch[] }> {
  const [unbalanced, orphans, posted, held, negative, assets] = await Promise.all([
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
    db`select distinct p.account, p.asset, w.asset as expected from postings p join wallets w on w.id::text = p.account
       where p.asset <> w.asset limit ${limit}`,
  ]);
  const mismatches: Mismatch[] = [
    ...unbalanced.map((r) => ({ kind: "journal_unbalanced" as const, journalId: r.journal_id, asset: r.asset, expected: "0", actual: r.total })),
    ...orphans.map((r) => ({ kind: "posting_orphan" as const, journalId: r.journal_id })),
    ...posted.map((r) => ({ kind: "posted_differs" as const, walletId: r.id, expected: r.expected, actual: r.actual })),
    ...held.map((r) => ({ kind: "held_differs" as const, walletId: r.id, expected: r.expected, actual: r.actual })),
    ...negative.map((r) => ({ kind: "negative_available" as const, walletId: r.id, expected: ">= 0", actual: r.actual })),
    ...assets.map((r) => ({ kind: "asset_differs" as const, walletId: r.account, expected: r.expected, actual: r.asset })),
  ];
  return { ok: mismatches.length === 0, mismatches };
}
