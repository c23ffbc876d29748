import type { Db, Queryable } from "../../../lib/db";
import { hotWalletAccount, networkFeesAccount, type Journal } from "../../../machines/journal";
import { commitLedger } from "../../../actors/write-path";
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
  const postings = [
    { account: hotWalletAccount(p.network), amount: -p.feeMinor },
    { account: networkFeesAccount(p.network), amount: p.feeMinor },
  ];
  const journal: Journal = { id: journalId, kind: "network_fee", asset: p.nativeAsset, postings, ...(p.txHash ? { reference: p.txHash } : {}) };
  // The one write path (actors/write-path.ts), with no aggregate: journals only.
  await commitLedger(tx, [{ journal, walletId, source: { kind: "withdrawal", id: p.withdrawalId }, at: new Date().toISOString() }]);
}
