import type { Journal } from "./journal";
import type { WithdrawalStatus } from "./withdrawal.machine";

/**
 * What a wallet actor is told (commands) and what it tells the world back (effects).
 * Ids and times arrive inside commands: the machine never invents either, so replaying the same
 * commands always gives the same effects.
 */
/**
 * A payout destination as the ledger carries it: sealed at the edge (AES-256-GCM, see
 * src/security/encryption.ts) plus a masked form for display. Nothing past the edge sees it whole.
 */
export interface SealedDestination {
  masked: Record<string, string>;
  sealed: { kid: string; iv: string; ct: string; tag: string };
}

interface Stamp {
  /** ISO-8601 time the host accepted the command. */
  at: string;
}

/**
 * The other end of a transfer: another wallet, or a chama (group wallet). A transfer to a chama is
 * a member's contribution from their wallet; one from a chama is a chama withdrawal paid into a
 * member's wallet. Exactly one of the two ids is set.
 */
export type TransferTo = { toWalletId: string; toChamaId?: never } | { toChamaId: string; toWalletId?: never };
export type TransferFrom = { fromWalletId: string; fromChamaId?: never } | { fromChamaId: string; fromWalletId?: never };

/** Just the receiving end (exactly one id), so effects and snapshots carry nothing else. */
export function receiverOf(t: TransferTo): TransferTo {
  return t.toChamaId !== undefined ? { toChamaId: t.toChamaId } : { toWalletId: t.toWalletId! };
}

/** Just the sending end (exactly one id). */
export function senderOf(t: TransferFrom): TransferFrom {
  return t.fromChamaId !== undefined ? { fromChamaId: t.fromChamaId } : { fromWalletId: t.fromWalletId! };
}

export type WalletCommand = Stamp &
  (
    | { type: "wallet.open"; walletId: string; ownerId: string; asset: string }
    | { type: "wallet.credit"; journalId: string; amount: bigint; reference?: string }
    | { type: "wallet.payment"; journalId: string; amount: bigint; reference?: string }
    | { type: "wallet.freeze" }
    | { type: "wallet.unfreeze" }
    | { type: "wallet.close" }
    | { type: "withdrawal.request"; withdrawalId: string; amount: bigint; destination: SealedDestination }
    | { type: "withdrawal.process"; withdrawalId: string }
    | { type: "withdrawal.complete"; withdrawalId: string; journalId: string }
    | { type: "withdrawal.fail"; withdrawalId: string; reason?: string }
    | { type: "withdrawal.cancel"; withdrawalId: string; reason?: string }
    // Bank payouts through Stripe (src/workers/payout-worker.ts sends these, keyed by withdrawal and
    // step; the system's own steps, never a caller's): sent to Stripe (requested → processing),
    // paid (the hold is posted to system:stripe_payouts), failed (the hold is released), and
    // returned by the bank after it was paid (system:stripe_payouts → wallet, `amount` the
    // withdrawal's: the wallet no longer holds a completed withdrawal, so the step names it).
    | { type: "withdrawal.payout.send"; withdrawalId: string }
    // `feeMinor`: a chain network's flat withdrawal fee, kept out of what was sent (it goes to
    // system:withdrawal_fees); the wallet still gives the whole amount.
    | { type: "withdrawal.payout.complete"; withdrawalId: string; journalId: string; feeMinor?: bigint }
    | { type: "withdrawal.payout.fail"; withdrawalId: string; reason?: string }
    | { type: "withdrawal.payout.return"; withdrawalId: string; journalId: string; amount: bigint; reason?: string }
    // Transaction monitoring (src/monitoring/): a rule whose outcome is `hold` parks a requested
    // withdrawal in manual review (the system's step, never a caller's); a platform admin releases
    // it (back to requested) or rejects it (the hold is released). Nothing pays it out meanwhile.
    | { type: "withdrawal.hold"; withdrawalId: string; reason?: string }
    | { type: "withdrawal.release"; withdrawalId: string; reason?: string }
    | { type: "withdrawal.reject"; withdrawalId: string; reason?: string }
    | ({ type: "transfer.reserve"; transferId: string; journalId: string; amount: bigint } & TransferTo)
    | ({
        type: "transfer.credit";
        transferId: string;
        journalId: string;
        asset: string;
        amount: bigint;
        /** From a chama: the member the payout is for; the wallet takes it only if it is theirs. */
        toMemberId?: string;
      } & TransferFrom)
    | { type: "transfer.settle"; transferId: string }
    | { type: "transfer.void"; transferId: string; journalId: string; reason: string }
    // Card deposits through Stripe (machines/deposit.machine.ts decides; the deposit saga sends these).
    | { type: "deposit.credit"; depositId: string; journalId: string; amount: bigint }
    /** `force`: a refund made at Stripe directly, booked whatever the wallet holds (the shortfall is debt). */
    | { type: "deposit.refund.debit"; depositId: string; refundId: string; journalId: string; amount: bigint; force: boolean }
    | { type: "deposit.refund.return"; depositId: string; refundId: string; journalId: string; amount: bigint }
    | { type: "deposit.dispute.debit"; depositId: string; disputeId: string; journalId: string; amount: bigint }
    | { type: "deposit.dispute.return"; depositId: string; disputeId: string; journalId: string; amount: bigint }
  );

export type WalletCommandType = WalletCommand["type"];

/** Business refusals: data, not exceptions. The host turns them into a stable error code. */
export type RejectionCode =
  | "WALLET_NOT_FOUND"
  | "WALLET_EXISTS"
  | "WALLET_FROZEN"
  | "WALLET_CLOSED"
  | "WALLET_NOT_EMPTY"
  | "INSUFFICIENT_FUNDS"
  /** A dispute took more than the wallet held: nothing leaves it until credits have paid that back. */
  | "WALLET_IN_DEBT"
  | "ASSET_MISMATCH"
  | "LIMIT_EXCEEDED"
  | "INVALID_TRANSITION";

interface Subject {
  walletId: string;
  asset: string;
  at: string;
}

export type WalletEffect =
  | { type: "rejected"; code: RejectionCode; detail: string }
  | (Subject & { type: "deposit.credited" | "deposit.refund.debited" | "deposit.refund.returned" | "deposit.dispute.debited" | "deposit.dispute.returned"; depositId: string; refundId?: string; disputeId?: string; amount: bigint; journal: Journal })
  | (Subject & { type: "wallet.opened"; ownerId: string })
  | (Subject & { type: "wallet.credited"; journal: Journal })
  | (Subject & { type: "wallet.paid"; journal: Journal })
  | (Subject & { type: "wallet.frozen" | "wallet.unfrozen" | "wallet.closed" })
  | (Subject & {
      type: "withdrawal.changed";
      withdrawalId: string;
      amount: bigint;
      status: WithdrawalStatus;
      destination?: SealedDestination;
      reason?: string;
      journal?: Journal;
    })
  /** To a chama, `memberId` is the wallet's owner: the member the contribution is attributed to. */
  | (Subject & { type: "transfer.reserved"; transferId: string; amount: bigint; journal: Journal; memberId?: string } & TransferTo)
  | (Subject & { type: "transfer.credited"; transferId: string; amount: bigint; journal: Journal } & TransferFrom)
  | (Subject & { type: "transfer.settled"; transferId: string; amount: bigint } & TransferTo)
  | (Subject & { type: "transfer.voided"; transferId: string; amount: bigint; reason: string; journal: Journal } & TransferTo);
