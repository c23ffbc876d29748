import { z } from "zod";
import { Money } from "./outputs";

/**
 * What the card deposit operations answer with (src/api/operations/deposits.ts), as zod schemas, in
 * the manner of outputs.ts: the OpenAPI document and the typed client are made from them, and
 * test/api/outputs.test.ts checks real answers against them. Built by deposit-views.ts.
 */
const Id = z.uuid();
const Time = z.iso.datetime({ offset: true }).describe("an ISO-8601 time");
const CardAsset = z.enum(["USD", "EUR", "KES"]);

const DEPOSIT_STATUSES = ["pending", "succeeded", "partially_refunded", "refunded", "disputed", "charged_back", "failed", "canceled"] as const;
const REFUND_STATUSES = ["requested", "pending", "succeeded", "failed", "canceled"] as const;

/** A deposit's answer when it is made: the PaymentIntent the app confirms with Stripe.js. */
export const DepositCreated = z.object({
  id: Id,
  walletId: Id,
  asset: CardAsset,
  amount: Money,
  status: z.enum(DEPOSIT_STATUSES).describe("pending until Stripe says the money arrived"),
  stripe: z.object({
    paymentIntentId: z.string(),
    clientSecret: z.string().describe("for the app to confirm the payment with Stripe (Stripe.js); never stored by Coffer"),
  }),
  createdAt: Time,
});

export const DepositRefundView = z.object({
  id: Id,
  depositId: Id,
  walletId: Id,
  asset: CardAsset,
  amount: Money,
  status: z
    .enum(REFUND_STATUSES)
    .describe("requested: the wallet paid it back and Stripe is being asked; pending at Stripe; then succeeded or failed (the money returns to the wallet); canceled: the wallet could not pay it back"),
  external: z.boolean().describe("made at Stripe directly, not asked through Coffer"),
  reason: z.string().optional(),
  stripeRefundId: z.string().optional(),
  createdAt: Time,
  updatedAt: Time,
});

export const DepositDisputeView = z.object({
  id: z.string().describe("Stripe's dispute id"),
  amount: Money,
  status: z.enum(["open", "won", "lost"]),
  reason: z.string().optional(),
  createdAt: Time,
  updatedAt: Time,
});

export const DepositView = z.object({
  id: Id,
  walletId: Id,
  asset: CardAsset,
  amount: Money.describe("what was asked for"),
  status: z.enum(DEPOSIT_STATUSES),
  received: Money.describe("what Stripe says arrived (credited to the wallet)"),
  refunded: Money.describe("refunds that went through"),
  disputed: Money.describe("what open disputes hold back"),
  stripe: z.object({ paymentIntentId: z.string() }),
  failureReason: z.string().optional().describe("why the payment failed or was canceled"),
  refunds: z.array(DepositRefundView.omit({ depositId: true, walletId: true, asset: true })),
  disputes: z.array(DepositDisputeView),
  createdAt: Time,
  updatedAt: Time,
});
