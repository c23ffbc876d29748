import { compactIban, digitsOnly } from "../../lib/bank-accounts";
import type { MovementKind } from "./rules";

/**
 * What monitoring reads in a committed domain event (an outbox row): the money movement it is, if
 * any, and the state change of the money object it belongs to (for the admin API's history). Pure:
 * rows in, facts out. Only committed events are read, so nothing here is ever in a payment's path.
 */
export interface OutboxRow {
  seq: string;
  xid: string;
  type: string;
  aggregate_id: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

/** A money movement: what the rules look at. */
export interface Movement {
  kind: MovementKind;
  asset: string;
  amount: bigint;
  at: Date;
  /** The wallet it moved (every kind but the chama ones). */
  walletId?: string;
  /** The chama it moved (chama_deposit, chama_withdrawal). */
  chamaId?: string;
  /** The person: the wallet's owner (looked up), or the chama member it is for. */
  memberId?: string;
  /** A payout request: the withdrawal (of a wallet or a chama) a `hold` parks. */
  withdrawal?: { id: string; of: "wallet" | "chama" };
}

/** One step in the life of a money object, as GET /admin/transactions/:id shows it. */
export interface HistoryStep {
  objectId: string;
  type: string;
  status?: string;
  journalId?: string;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/** The money object an event is about: a withdrawal, transfer or deposit; for a credit, payment or chama deposit, its journal. */
export function historyOf(row: OutboxRow): HistoryStep | undefined {
  const p = row.payload;
  const objectId =
    str(p.withdrawalId) ??
    str(p.transferId) ??
    str(p.depositId) ??
    (row.type === "wallet.credited" || row.type === "wallet.paid" || row.type === "chama.deposited" ? str(p.journalId) : undefined);
  if (!objectId) return undefined;
  const status = str(p.status) ?? TRANSFER_STATUS[row.type] ?? (row.type === "wallet.credited" || row.type === "wallet.paid" || row.type === "chama.deposited" ? "posted" : undefined);
  return { objectId, type: row.type, ...(status ? { status } : {}), ...(str(p.journalId) ? { journalId: str(p.journalId)! } : {}) };
}

const TRANSFER_STATUS: Record<string, string> = {
  "transfer.reserved": "pending",
  "transfer.credited": "credited",
  "transfer.settled": "settled",
  "transfer.voided": "voided",
  "chama.transfer.credited": "credited",
};

/**
 * The movement an event records, if it is one: money in (credits, card deposits, chama deposits) or
 * out (payments, transfers, withdrawal and chama withdrawal requests). `firstOfWithdrawal` says
 * whether this is the first event seen for the withdrawal it names (a wallet withdrawal's
 * `requested` is also what a release after a hold emits: only the first one is a request).
 */
export function movementOf(row: OutboxRow, firstOfWithdrawal: boolean): Movement | undefined {
  const p = row.payload;
  const asset = str(p.asset);
  const amountText = str(p.amount);
  if (!asset || !amountText || !/^[0-9]+$/.test(amountText)) return undefined;
  const base = { asset, amount: BigInt(amountText), at: row.created_at };
  switch (row.type) {
    case "wallet.credited":
      return { kind: "credit", ...base, walletId: str(p.walletId)! };
    case "wallet.paid":
      return { kind: "payment", ...base, walletId: str(p.walletId)! };
    case "deposit.credited":
      return { kind: "deposit", ...base, walletId: str(p.walletId)! };
    case "transfer.reserved":
      return { kind: "transfer", ...base, walletId: str(p.walletId)! };
    case "withdrawal.changed":
      if (p.status !== "requested" || !firstOfWithdrawal) return undefined;
      return { kind: "withdrawal", ...base, walletId: str(p.walletId)!, withdrawal: { id: str(p.withdrawalId)!, of: "wallet" } };
    case "chama.deposited":
      return { kind: "chama_deposit", ...base, chamaId: str(p.chamaId)!, ...(str(p.memberId) ? { memberId: str(p.memberId)! } : {}) };
    case "chama.withdrawal.changed":
      if (p.from !== "requested") return undefined;
      return { kind: "chama_withdrawal", ...base, chamaId: str(p.chamaId)!, memberId: str(p.memberId)!, withdrawal: { id: str(p.withdrawalId)!, of: "chama" } };
    default:
      return undefined;
  }
}

/**
 * A payout destination in one canonical text, so the same place compares equal however it was
 * written (spaces and case in an IBAN, dashes in an account, an EVM address's checksum case). Only
 * ever fed to a keyed hash (Vault.mac): the text itself is never stored or logged. Undefined for a
 * destination that is not a place outside Coffer (a chama paying into a member's wallet).
 */
export function canonicalDestination(d: Record<string, unknown>): string | undefined {
  const s = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : "");
  switch (d.type) {
    case "bank":
      return `bank:${compactIban(s("account"))}`;
    case "us_bank":
      return `us_bank:${digitsOnly(s("routing"))}:${digitsOnly(s("account"))}`;
    case "ke_bank":
      return `ke_bank:${s("bankCode")}:${digitsOnly(s("account"))}`;
    case "bank_token":
      return `bank_token:${s("token")}`;
    case "stripe_account":
      return `stripe_account:${s("account")}`;
    case "crypto": {
      const address = s("address");
      // EVM addresses are case-insensitive (the mixed case is only a checksum); others are not.
      const evm = /^0x[0-9a-fA-F]{40}$/.test(address);
      return `crypto:${s("network")}:${evm ? address.toLowerCase() : address}`;
    }
    default:
      return undefined;
  }
}
