import type { Db } from "../lib/db";
import type { DepositEffect } from "../machines/deposit.events";
import { DEPOSIT_MACHINE_VERSION, depositMachine, disputedOf, emptyDepositContext, refundedOf, type DepositContext } from "../machines/deposit.machine";
import { decode, encode } from "./codec";
import { confirmAbsent } from "./store-errors";
import type { AggregateRows } from "./write-path";

/**
 * A deposit's persistence: its snapshot (the truth) and the rows SQL reads (`deposits`,
 * `deposit_refunds`, `deposit_disputes`), written with its idempotency records and outbox events
 * through the one write path (actors/write-path.ts), guarded by the version the actor loaded.
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

/** What a deposit's batch writes besides what every aggregate writes (actors/write-path.ts). */
export const depositRows: AggregateRows = {
  table: "deposits",
  aggregate: (w, to) => {
    const snapshot = w.snapshot as DepositSnapshot;
    const context = snapshot.context;
    return {
      id: w.id,
      from_version: w.fromVersion,
      to_version: to,
      wallet_id: context.walletId,
      owner_id: context.ownerId,
      asset: context.asset,
      amount: context.amount.toString(),
      status: String(snapshot.value),
      payment_intent_id: context.paymentIntentId,
      received: context.received.toString(),
      refunded: refundedOf(context).toString(),
      disputed: disputedOf(context).toString(),
      machine_version: DEPOSIT_MACHINE_VERSION,
      snapshot: JSON.parse(encode({ value: snapshot.value, context })),
      created_at: context.createdAt || w.at,
      updated_at: w.at,
    };
  },
  rows: (w) => {
    const context = (w.snapshot as DepositSnapshot).context;
    const refunds = new Set<string>();
    const disputes = new Set<string>();
    for (const e of w.effects as DepositEffect[]) {
      if (e.type === "deposit.refund.changed") refunds.add(e.refundId);
      if (e.type === "deposit.dispute.changed") disputes.add(e.disputeId);
    }
    return {
      deposit_refunds: [...refunds].map((id) => {
        const r = context.refunds[id]!;
        return {
          id,
          deposit_id: w.id,
          amount: r.amount.toString(),
          status: r.status,
          external: r.external,
          stripe_refund_id: r.stripeRefundId ?? null,
          reason: r.reason ?? null,
          created_at: r.createdAt,
          updated_at: r.updatedAt,
        };
      }),
      deposit_disputes: [...disputes].map((id) => {
        const d = context.disputes[id]!;
        return { id, deposit_id: w.id, amount: d.amount.toString(), status: d.status, reason: d.reason ?? null, created_at: d.createdAt, updated_at: d.updatedAt };
      }),
    };
  },
  event: (e) => ({ deposit_pending: needsWalletStep(e as DepositEffect) }),
};
