import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";
import { authorize } from "../../lib/policy";
import type { Principal } from "../../lib/principal";
import { transferView, walletView, withdrawalView } from "./views";

/**
 * Reads. They see only committed state (Postgres), never an actor's batch in progress, so a read
 * can never show money that a failed commit later takes back. Each checks the caller may see it.
 */
export async function getWallet(db: Db, p: Principal, walletId: string) {
  const [w] = await db`select id, owner_id, asset, status, posted::text, held::text, version from wallets where id = ${walletId}`;
  if (!w) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
  authorize(p, "wallet.read", [w.owner_id], "WALLET_NOT_FOUND");
  return walletView({ walletId: w.id, ownerId: w.owner_id, asset: w.asset, status: w.status, posted: BigInt(w.posted), held: BigInt(w.held), version: Number(w.version) });
}

export async function getWithdrawal(db: Db, p: Principal, withdrawalId: string) {
  const [w] = await db`select d.id, d.wallet_id, d.asset, d.amount::text, d.status, d.destination, d.reason, d.created_at, d.updated_at, w.owner_id
    from withdrawals d join wallets w on w.id = d.wallet_id where d.id = ${withdrawalId}`;
  if (!w) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
  authorize(p, "withdrawal.read", [w.owner_id], "WITHDRAWAL_NOT_FOUND");
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

export async function getTransfer(db: Db, p: Principal, transferId: string) {
  const [t] = await db`select t.id, t.from_wallet_id, t.to_wallet_id, t.asset, t.amount::text, t.status, t.reason, t.created_at, t.updated_at,
      f.owner_id as from_owner, o.owner_id as to_owner
    from transfers t join wallets f on f.id = t.from_wallet_id join wallets o on o.id = t.to_wallet_id where t.id = ${transferId}`;
  if (!t) throw new CofferError("TRANSFER_NOT_FOUND", "transfer not found");
  // Both ends may see it: the sender and the receiver.
  authorize(p, "transfer.read", [t.from_owner, t.to_owner], "TRANSFER_NOT_FOUND");
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
export async function listTransactions(db: Db, p: Principal, walletId: string, pageSize: number, cursor?: string) {
  const [w] = await db`select asset, owner_id from wallets where id = ${walletId}`;
  if (!w) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
  authorize(p, "wallet.read", [w.owner_id], "WALLET_NOT_FOUND");
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
