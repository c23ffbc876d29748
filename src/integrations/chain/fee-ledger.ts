import type { Db, Queryable } from "../../../lib/db";
import { hotWalletAccount, networkFeesAccount } from "../../../machines/journal";
import { stepJournalId } from "../../workers/deposit-saga";

/**
 * Gas (or a Solana fee) a payout's transaction paid from the hot wallet, booked once: a `network_fee`
 * journal moving it from `system:hot_wallets:<network>` to `system:network_fees:<network>`, in the
 * network's native asset, its source the withdrawal (so the admin view of a withdrawal shows what its
 * payout cost). With the payouts posted to `system:chain_payouts`, the ledger explains every unit
 * that left a hot wallet. The journal's `wallet_id` is the hot wallet's row id, never a user's
 * wallet: a user's history does not show the platform's fees.
 */
export async function bookNetworkFee(
  db: Db,
  p: { withdrawalId: string; network: string; nativeAsset: string; feeMinor: bigint; txHash: string | null },
): Promise<void> {
  if (p.feeMinor <= 0n) return;
  const journalId = stepJournalId("network_fee", p.withdrawalId);
  await db.begin(async (tx) => {
    const claimed = await tx`update chain_payouts set fee_journal_id = ${journalId}, fee_wei = ${p.feeMinor.toString()}, updated_at = now()
      where withdrawal_id = ${p.withdrawalId} and fee_journal_id is null returning withdrawal_id`;
    if (!claimed.length) return; // booked already
    await insertFeeJournal(tx, journalId, p);
  });
}

async function insertFeeJournal(
  tx: Queryable,
  journalId: string,
  p: { withdrawalId: string; network: string; nativeAsset: string; feeMinor: bigint; txHash: string | null },
): Promise<void> {
  const [hot] = await tx`select id from hot_wallets where network = ${p.network}`;
  const walletId = (hot?.id as string | undefined) ?? p.withdrawalId;
  await tx`insert into journals (id, kind, asset, wallet_id, reference, source_kind, source_id, created_at)
    values (${journalId}, 'network_fee', ${p.nativeAsset}, ${walletId}, ${p.txHash}, 'withdrawal', ${p.withdrawalId}, now())`;
  await tx`insert into postings (journal_id, account, asset, amount) values
    (${journalId}, ${hotWalletAccount(p.network)}, ${p.nativeAsset}, ${(-p.feeMinor).toString()}),
    (${journalId}, ${networkFeesAccount(p.network)}, ${p.nativeAsset}, ${p.feeMinor.toString()})`;
}
