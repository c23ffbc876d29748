import type { Db } from "../db/client";
import { CofferError } from "../errors";
import type { Asset } from "../ledger/assets";
import { formatAmount } from "../ledger/money";
import { transferView, walletView, withdrawalView } from "./views";

/**
 * Reads. They see only committed state (Postgres), never an actor's batch in progress, so a read
 * can never show money that a failed commit later takes back.
 */
export async function getWallet(db: Db, walletId: string) {
  const [w] = await db`select id, owner_id, asset, status, posted::text, held::text, version from wallets where id = ${walletId}`;
  if (!w) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
  return walletView({ walletId: w.id, ownerId: w.owner_id, asset: w.asset, status: w.status, posted: BigInt(w.posted), held: BigInt(w.held), version: Number(w.version) });
}

export async function getWithdrawal(db: Db, withdrawalId: string) {
  const [w] = await db`select id, wallet_id, asset, amount::text, status, destination, reason, created_at, updated_at from withdrawals where id = ${withdrawalId}`;
  if (!w) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
  return withdrawalView({
    id: w.id,
    walletId: w.wallet_id,
    asset: w.asset,
    amount: w.amount,
    status: w.status,
    destination: w.destination,
    reason: w.reason,
    createdAt: w.created_at.toISOString(),
    updatedAt: w.updated_at.toISOString(),
  });
}

export async function getTransfer(db: Db, transferId: string) {
  const [t] = await db`select id, from_wallet_id, to_wallet_id, asset, amount::text, status, reason, created_at, updated_at from transfers where id = ${transferId}`;
  if (!t) throw new CofferError("TRANSFER_NOT_FOUND", "transfer not found");
  return transferView({
    id: t.id,
    fromWalletId: t.from_wallet_id,
    toWalletId: t.to_wallet_id,
    asset: t.asset,
    amount: t.amount,
    status: t.status,
    reason: t.reason,
    createdAt: t.created_at.toISOString(),
    updatedAt: t.updated_at.toISOString(),
  });
}

/** A wallet's postings, newest first; the cursor is the last posting id seen (opaque to callers). */
export async function listTransactions(db: Db, walletId: string, pageSize: number, cursor?: string) {
  const [w] = await db`select asset from wallets where id = ${walletId}`;
  if (!w) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
  const rows = await db`
    select p.id::text as seq, p.amount::text, j.id as journal_id, j.kind, j.reference, j.created_at
    from postings p join journals j on j.id = p.journal_id
    where p.account = ${walletId} ${cursor ? db`and p.id < ${cursor}` : db``}
    order by p.id desc limit ${pageSize + 1}`;
  const page = rows.slice(0, pageSize);
  return {
    items: page.map((r) => ({
      id: r.journal_id,
      kind: r.kind,
      amount: formatAmount(BigInt(r.amount), w.asset as Asset),
      ...(r.reference ? { reference: r.reference } : {}),
      createdAt: r.created_at.toISOString(),
    })),
    nextCursor: rows.length > pageSize ? page[page.length - 1]!.seq : null,
  };
}
