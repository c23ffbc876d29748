import type { Reply } from "../../actors/envelope";
import type { DepositCommand, DepositEffect } from "../../machines/deposit.events";
import { disputedOf, refundedOf, type DepositContext, type DepositRefund } from "../../machines/deposit.machine";
import { ERROR_STATUS, problem } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";

/**
 * How card deposits and their refunds look to callers (schemas: deposit-outputs.ts). Amounts leave
 * as decimal strings with exactly the asset's scale. Built from the deposit's context, the same for
 * an actor's answer and a read.
 */
const fmt = (minor: bigint, asset: string) => formatAmount(minor, asset as Asset);

export function depositRefundView(context: DepositContext, refundId: string, refund: DepositRefund) {
  return {
    id: refundId,
    depositId: context.depositId,
    walletId: context.walletId,
    asset: context.asset,
    amount: fmt(refund.amount, context.asset),
    status: refund.status,
    external: refund.external,
    ...(refund.reason ? { reason: refund.reason } : {}),
    ...(refund.stripeRefundId ? { stripeRefundId: refund.stripeRefundId } : {}),
    createdAt: refund.createdAt,
    updatedAt: refund.updatedAt,
  };
}

/** The whole deposit: amounts, its refunds (oldest first) and disputes. */
export function depositView(context: DepositContext, status: string) {
  const refunds = Object.entries(context.refunds)
    .sort(([, a], [, b]) => a.createdAt.localeCompare(b.createdAt))
    .map(([id, r]) => {
      const { depositId: _d, walletId: _w, asset: _a, ...rest } = depositRefundView(context, id, r);
      return rest;
    });
  const disputes = Object.entries(context.disputes)
    .sort(([, a], [, b]) => a.createdAt.localeCompare(b.createdAt))
    .map(([id, d]) => ({ id, amount: fmt(d.amount, context.asset), status: d.status, ...(d.reason ? { reason: d.reason } : {}), createdAt: d.createdAt, updatedAt: d.updatedAt }));
  return {
    id: context.depositId,
    walletId: context.walletId,
    asset: context.asset,
    amount: fmt(context.amount, context.asset),
    status,
    received: fmt(context.received, context.asset),
    refunded: fmt(refundedOf(context), context.asset),
    disputed: fmt(disputedOf(context), context.asset),
    stripe: { paymentIntentId: context.paymentIntentId },
    ...(context.failure && (status === "failed" || status === "canceled") ? { failureReason: context.failure } : {}),
    refunds,
    disputes,
    createdAt: context.createdAt,
    updatedAt: context.updatedAt,
  };
}

/**
 * The outcome a deposit command's caller hears. A new deposit answers its PaymentIntent (the
 * client secret is added by the service from Stripe's answer: Coffer never stores it); a refund
 * request answers the refund; the system's own steps answer which step was taken.
 */
export function renderDepositOutcome(_command: DepositCommand, effects: DepositEffect[], context: DepositContext, status: string): Reply {
  const first = effects[0]!;
  if (first.type === "rejected") return { status: ERROR_STATUS[first.code], body: problem(first.code, first.detail) };
  switch (first.type) {
    case "deposit.opened":
      return {
        status: 201,
        body: {
          id: context.depositId,
          walletId: context.walletId,
          asset: context.asset,
          amount: fmt(context.amount, context.asset),
          status,
          stripe: { paymentIntentId: context.paymentIntentId },
          createdAt: context.createdAt,
        },
      };
    case "deposit.refund.changed": {
      const refund = context.refunds[first.refundId]!;
      return { status: first.status === "requested" ? 201 : 200, body: depositRefundView(context, first.refundId, refund) };
    }
    default:
      return { status: 200, body: { depositId: context.depositId, step: first.type, status } };
  }
}
