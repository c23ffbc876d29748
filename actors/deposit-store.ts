import type { Db } from "../lib/db";
import type { DepositEffect } from "../machines/deposit.events";
import { DEPOSIT_MACHINE_VERSION, depositMachine, disputedOf, emptyDepositContext, refundedOf, type DepositContext } from "../machines/deposit.machine";
import type { ActorWrite } from "./actor-kind";
import { decode, encode } from "./codec";
import { claimKeys, writeOutbox } from "./aggregate-rows";
import { confirmAbsent, FencedError } from "./store-errors";

/**
 * A deposit's persistence, the chama way: its snapshot (the truth) and the rows SQL reads
 * (`deposits`, `deposit_refunds`, `deposit_disputes`), idempotency records and outbox events, in ONE
 * transaction, guarded by the version the actor loaded. Deposits are slow next to wallets (a few
 * commands each, spread over minutes), so each batch is its own transaction.
 *
 * Effects that need a wallet step (credit, refund, dispute) go to the outbox marked
 * `deposit_pending`: the deposit saga (src/workers/deposit-saga.ts) takes the step and clears the
 * mark once it has committed, so a crash between the two resumes where it stopped.
 */
export type DepositSnapshot = ReturnType<typeof depositMachine.resolveState>;

export async function loadDeposit(db: Db, depositId: string): Promise<{ snapshot: DepositSnapshot; version: number }> {
  const [row] = await db`select version, machine_version, snapshot::text as snapshot from deposits where id = ${depositId}`;
  if (!row) await confirmAbsent(db, "deposits", depositId);
  if (!row) return { snapshot: depositMachine.resolveState({ value: "unopened", context: emptyDepositContext(depositId) }), version: 0 };
  if (row.machine_version !== DEPOSIT_MACHINE_VERSION) {
    throw new Error(`deposit snapshot has machine version ${row.machine_version}, expected ${DEPOSIT_MACHINE_VERSION}`);
  }
  const persisted = decode<{ value: string; context: DepositContext }>(row.snapshot);
  return { snapshot: depositMachine.resolveState(persisted), version: Number(row.version) };
}

/** Whether an effect asks the deposit saga for a wallet step. */
export function needsWalletStep(e: DepositEffect): boolean {
  return e.type === "deposit.succeeded" || ((e.type === "deposit.refund.changed" || e.type === "deposit.dispute.changed") && e.move !== undefined);
}

export async function commitDeposit(db: Db, write: ActorWrite): Promise<number> {
  const snapshot = write.snapshot as DepositSnapshot;
  const context = snapshot.context;
  const effects = write.effects as DepositEffect[];
  const toVersion = effects.length ? write.fromVersion + 1 : write.fromVersion;

  await db.begin(async (tx) => {
    await claimKeys(tx, write);
    const row = {
      status: String(snapshot.value),
      received: context.received.toString(),
      refunded: refundedOf(context).toString(),
      disputed: disputedOf(context).toString(),
      snapshot: encode({ value: snapshot.value, context }),
    };
    const written =
      write.fromVersion === 0
        ? await tx`insert into deposits (id, wallet_id, owner_id, asset, amount, status, payment_intent_id, received, refunded, disputed,
              version, machine_version, snapshot, created_at, updated_at)
            values (${write.id}, ${context.walletId}, ${context.ownerId}, ${context.asset}, ${context.amount.toString()}, ${row.status},
              ${context.paymentIntentId}, ${row.received}, ${row.refunded}, ${row.disputed}, 1, ${DEPOSIT_MACHINE_VERSION},
              ${row.snapshot}::text::jsonb, ${context.createdAt || write.at}, ${write.at})
            on conflict do nothing returning id`
        : await tx`update deposits set status = ${row.status}, received = ${row.received}, refunded = ${row.refunded}, disputed = ${row.disputed},
              version = ${toVersion}, snapshot = ${row.snapshot}::text::jsonb,
              updated_at = case when ${toVersion}::bigint > version then ${write.at}::timestamptz else updated_at end
            where id = ${write.id} and version = ${write.fromVersion} returning id`;
    if (!written.length) throw new FencedError(write.id, write.fromVersion);
    if (!effects.length) return;

    const refunds = new Set<string>();
    const disputes = new Set<string>();
    for (const e of effects) {
      if (e.type === "deposit.refund.changed") refunds.add(e.refundId);
      if (e.type === "deposit.dispute.changed") disputes.add(e.disputeId);
    }
    for (const id of refunds) {
      const r = context.refunds[id]!;
      await tx`insert into deposit_refunds (id, deposit_id, amount, status, external, stripe_refund_id, reason, created_at, updated_at)
        values (${id}, ${write.id}, ${r.amount.toString()}, ${r.status}, ${r.external}, ${r.stripeRefundId ?? null}, ${r.reason ?? null}, ${r.createdAt}, ${r.updatedAt})
        on conflict (id) do update set status = excluded.status, stripe_refund_id = excluded.stripe_refund_id, reason = excluded.reason, updated_at = excluded.updated_at`;
    }
    for (const id of disputes) {
      const d = context.disputes[id]!;
      await tx`insert into deposit_disputes (id, deposit_id, amount, status, reason, created_at, updated_at)
        values (${id}, ${write.id}, ${d.amount.toString()}, ${d.status}, ${d.reason ?? null}, ${d.createdAt}, ${d.updatedAt})
        on conflict (id) do update set status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at`;
    }
    await writeOutbox(
      tx,
      write.id,
      effects.filter((e) => e.type !== "rejected"),
      (e) => ({ deposit_pending: needsWalletStep(e) }),
    );
  });
  return toVersion;
}
