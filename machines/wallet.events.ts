import type { Journal } from "./journal";
import type { WithdrawalStatus } from "./withdrawal.machine";

/**
 * What a wallet actor is told (commands) and what it tells the world back (effects).
 * Ids and times arrive inside commands: the machine never invents either, so replaying the same
 * commands always gives the same effects.
 */
export type Destination =
  | { type: "bank"; account: string }
  | { type: "crypto"; network: string; address: string };

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
    | { type: "transfer.reserve"; transferId: string; journalId: string; toWalletId: string; amount: bigint }
    | { type: "transfer.credit"; transferId: string; journalId: string; fromWalletId: string; asset: string; amount: bigint }
    | { type: "transfer.settle"; transferId: string }
    | { type: "transfer.void"; transferId: string; journalId: string; reason: string }
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
  | (Subject & { type: "transfer.reserved"; transferId: string; toWalletId: string; amount: bigint; journal: Journal })
  | (Subject & { type: "transfer.credited"; transferId: string; fromWalletId: string; amount: bigint; journal: Journal })
  | (Subject & { type: "transfer.settled"; transferId: string; toWalletId: string; amount: bigint })
  | (Subject & { type: "transfer.voided"; transferId: string; toWalletId: string; amount: bigint; reason: string; journal: Journal });
