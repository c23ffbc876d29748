/**
 * A journal is one balanced money movement: its postings sum to zero. Machines describe journals;
 * the actor host writes them. System accounts are named `system:<purpose>` and exist only as postings.
 */
export const SYSTEM_ACCOUNT = {
  funding: "system:funding",
  payments: "system:payments",
  withdrawals: "system:withdrawals",
  transit: "system:transfers_in_transit",
  /** Card money in through Stripe: what Stripe holds for Coffer's wallets (deposits in, refunds out). */
  stripeClearing: "system:stripe_clearing",
  /** Card money the card networks took back in disputes (open or lost); a won dispute gives it back. */
  stripeDisputes: "system:stripe_disputes",
  /** Money paid out through Stripe (bank payouts and Connect transfers, src/workers/payout-worker.ts); a returned payout comes back from it. */
  stripePayouts: "system:stripe_payouts",
  /** Crypto paid out on chain by Coffer itself from its hot wallets (src/integrations/evm/payouts.ts). */
  chainPayouts: "system:chain_payouts",
  /** Flat withdrawal fees a chain network charges (NETWORKS_FILE `withdrawalFeeMinor`): kept from what is sent. */
  withdrawalFees: "system:withdrawal_fees",
} as const;

/** What the network took in fees for Coffer's chain payouts, per network (always in its native asset). */
export const networkFeesAccount = (network: string) => `system:network_fees:${network}`;
/** The hot wallet of a network, as far as the ledger sees it: the fees it paid leave from here. */
export const hotWalletAccount = (network: string) => `system:hot_wallets:${network}`;

export type JournalKind =
  /** Card deposits (src/workers/deposit-saga.ts): money in, refunds out and back, disputes out and back. */
  | "deposit"
  | "deposit_refund"
  /** A refund made at Stripe directly: booked whatever the wallet holds (the shortfall is debt). */
  | "deposit_refund_forced"
  | "deposit_refund_return"
  | "dispute"
  | "dispute_return"
  | "credit"
  | "payment"
  | "withdrawal"
  /** A payout Stripe had paid that the bank returned: system:stripe_payouts → wallet. */
  | "withdrawal_return"
  | "transfer_reserve"
  | "transfer_credit"
  | "transfer_void"
  | "chama_deposit"
  | "chama_withdrawal"
  /** A member's contribution from their wallet arriving in the chama (transit → chama). */
  | "chama_contribution"
  /** A chama withdrawal into a member's wallet that the wallet refused: the money back (transit → chama). */
  | "chama_withdrawal_void"
  /** Gas a chain payout paid from a hot wallet: system:hot_wallets:<network> → system:network_fees:<network> (src/integrations/chain/fees-ledger.ts). */
  | "network_fee";

export interface Posting {
  account: string;
  amount: bigint;
}

export interface Journal {
  id: string;
  kind: JournalKind;
  asset: string;
  reference?: string;
  postings: Posting[];
}

/** `amount` moves from one account to another: two postings that cancel out. */
export function move(id: string, kind: JournalKind, asset: string, from: string, to: string, amount: bigint, reference?: string): Journal {
  return {
    id,
    kind,
    asset,
    ...(reference === undefined ? {} : { reference }),
    postings: [
      { account: from, amount: -amount },
      { account: to, amount },
    ],
  };
}
