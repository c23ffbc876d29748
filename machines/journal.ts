/**
 * A journal is one balanced money movement: its postings sum to zero. Machines describe journals;
 * the actor host writes them. System accounts are named `system:<purpose>` and exist only as postings.
 */
export const SYSTEM_ACCOUNT = {
  funding: "system:funding",
  payments: "system:payments",
  withdrawals: "system:withdrawals",
  transit: "system:transfers_in_transit",
} as const;

export type JournalKind =
  | "credit"
  | "payment"
  | "withdrawal"
  | "transfer_reserve"
  | "transfer_credit"
  | "transfer_void"
  | "chama_deposit"
  | "chama_withdrawal";

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
