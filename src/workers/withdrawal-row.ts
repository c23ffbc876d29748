import type { Db } from "../../lib/db";
import type { SealedDestination } from "../../machines/wallet.events";

/** A withdrawal as the payout workers read it (Stripe's, src/workers/payout-worker.ts, and the chains', src/integrations/chain/payout-worker.ts). */
export interface WithdrawalRow {
  id: string;
  wallet_id: string;
  asset: string;
  amount: string;
  status: string;
  destination: SealedDestination;
}

export async function readWithdrawal(db: Db, id: string): Promise<WithdrawalRow | undefined> {
  const [row] = await db`select id, wallet_id, asset, amount::text as amount, status, destination from withdrawals where id = ${id}`;
  return row as unknown as WithdrawalRow | undefined;
}
