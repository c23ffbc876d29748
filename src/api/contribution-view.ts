import type { Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";

/**
 * How a member's contribution from their wallet to a chama looks to callers (ContributionView in
 * outputs.ts): a transfer whose receiver is the chama, credited to the wallet's owner.
 */
export function contributionView(c: {
  id: string;
  chamaId: string;
  fromWalletId: string;
  memberId: string;
  asset: string;
  amount: bigint | string;
  status: "pending" | "settled" | "voided";
  reason?: string | null;
  createdAt: string;
  updatedAt: string;
}) {
  return {
    id: c.id,
    chamaId: c.chamaId,
    fromWalletId: c.fromWalletId,
    memberId: c.memberId,
    asset: c.asset,
    amount: formatAmount(BigInt(c.amount), c.asset as Asset),
    status: c.status,
    ...(c.reason ? { reason: c.reason } : {}),
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
}
