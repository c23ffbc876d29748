import type Stripe from "stripe";
import type { Db } from "../../../lib/db";
import { payoutStatusOf, type PayoutWorker } from "../../workers/payout-worker";
import { crashPoint } from "../../crash";
import { METADATA } from "./client";
import type { EventOutcome, WebhookDispatcher } from "./events";
import { assetOfCurrency, fromStripeAmount } from "./money";

/**
 * What Stripe's payout events mean for withdrawals paid out through Stripe
 * (src/workers/payout-worker.ts): `payout.paid` completes the withdrawal (its hold is posted to
 * system:stripe_payouts), `payout.failed` and `payout.canceled` fail it (its hold is released), or,
 * when it was completed already (the bank sent a paid payout back), return its money to the wallet.
 *
 * Each handler finds the withdrawal by the `coffer_withdrawal_id` in the payout's metadata, checks
 * the payout is the one Coffer made for it (its id, amount and currency), records Stripe's word on
 * the withdrawal's payout row, and lets the worker take the wallet step, keyed by withdrawal and step.
 * So the same event twice, events out of order, or a `payout.paid` that arrives before the create
 * call's answer was recorded, end the same way: a failed payout stays failed (a stale `paid` after
 * it changes nothing), and each step happens once.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerPayoutHandlers(dispatcher: WebhookDispatcher, db: Db, worker: PayoutWorker): void {
  const handle = (event: Stripe.Event) => payoutEvent(db, worker, event);
  for (const type of ["payout.paid", "payout.failed", "payout.canceled"]) dispatcher.register(type, handle);
}

async function payoutEvent(db: Db, worker: PayoutWorker, event: Stripe.Event): Promise<EventOutcome | "retry"> {
  const payout = event.data.object as Stripe.Payout;
  const withdrawalId = payout.metadata?.[METADATA.withdrawalId];
  if (!withdrawalId) return "ignored: not a Coffer payout";
  if (!UUID.test(withdrawalId)) return "alert: a payout with unreadable Coffer metadata";
  const [row] = await db`select w.amount::text as amount, w.asset, p.stripe_id, p.kind from withdrawals w
    left join withdrawal_payouts p on p.withdrawal_id = w.id where w.id = ${withdrawalId}`;
  if (!row) return "alert: a payout names a withdrawal Coffer does not have";
  if (row.kind !== "payout") return "alert: a payout names a withdrawal Coffer did not pay out by a Stripe payout";
  if (row.stripe_id && row.stripe_id !== payout.id) return "alert: a second payout names a withdrawal already paid out by another; nothing done";
  if (fromStripeAmount(payout.amount) !== BigInt(row.amount) || assetOfCurrency(payout.currency) !== row.asset) {
    return "alert: a payout's amount or currency is not its withdrawal's; nothing done";
  }
  const status = event.type === "payout.paid" ? "paid" : event.type === "payout.failed" ? "failed" : event.type === "payout.canceled" ? "canceled" : payoutStatusOf(payout.status);
  await worker.record(withdrawalId, { stripeId: payout.id, status, ...(payout.failure_code ? { failureCode: String(payout.failure_code).slice(0, 100) } : {}) });
  crashPoint("payout.before_complete");
  return (await worker.settle(withdrawalId)) === "retry" ? "retry" : "applied";
}
