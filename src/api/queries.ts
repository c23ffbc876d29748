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

/**
 * A wallet's movements, newest first; the cursor is the last ledger seq seen (opaque to callers).
 * Each names what it belongs to (the journal's source: the credit, payment, transfer or withdrawal
 * its caller knows by id) and the posted balance right after it.
 *
 * The balance after a movement is the wallet's posted balance less every movement newer than it,
 * in ONE statement (one snapshot: the wallet row and its movements are committed together, so the
 * sum is exact): the movements newer than the page once, then a running sum down the page. A deep
 * page of a busy wallet sums everything above it, an index range on (wallet_id, seq). A wallet's
 * movements are the ones its own actor wrote (the verifier checks that no other touches it).
 */
export async function listTransactions(db: Db, p: Principal, walletId: string, pageSize: number, cursor?: string) {
  const [w] = await db`select asset, owner_id from wallets where id = ${walletId}`;
  if (!w) throw new CofferError("WALLET_NOT_FOUND", "wallet not found");
  authorize(p, "wallet.read", [w.owner_id], "WALLET_NOT_FOUND");
  const rows = await db`
    with mine as (
      select m.seq, case when m.credit = ${walletId} then m.amount when m.debit = ${walletId} then -m.amount else 0 end as amount, m.journal_id
      from movements m
      where m.wallet_id = ${walletId}
    ), page as (
      select * from mine where amount <> 0 ${cursor ? db`and seq < ${cursor}::bigint` : db``}
      order by seq desc limit ${pageSize + 1}
    ), newer as (
      select coalesce(sum(amount), 0) as amount from mine
      where ${cursor ? db`seq >= ${cursor}::bigint` : db`false`}
    ), running as (
      select page.*, coalesce(sum(page.amount) over (order by page.seq desc rows between unbounded preceding and 1 preceding), 0) as above
      from page
    )
    select r.seq::text as seq, r.amount::text as amount, m.journal_id, m.kind, m.reference, m.created_at,
      coalesce(m.source_kind, case m.kind when 'chama_deposit' then 'deposit' else m.kind end) as source_kind,
      coalesce(m.source_id, m.journal_id) as source_id,
      ((select posted from wallets where id = ${walletId}) - (select amount from newer) - r.above)::text as balance_after
    from running r join movements m on m.seq = r.seq
    order by r.seq desc`;
  const page = rows.slice(0, pageSize);
  const asset = w.asset as Asset;
  return {
    items: page.map((r) => ({
      id: r.journal_id,
      kind: r.kind,
      source: { kind: r.source_kind, id: r.source_id },
      amount: formatAmount(BigInt(r.amount), asset),
      balanceAfter: formatAmount(BigInt(r.balance_after), asset),
      ...(r.reference ? { reference: r.reference } : {}),
      createdAt: r.created_at.toISOString(),
    })),
    nextCursor: rows.length > pageSize ? page[page.length - 1]!.seq : null,
  };
}
