/**
 * What a deposit actor is told (commands) and what it tells the world back (effects).
 *
 * A deposit is money a card holder pays into a wallet through Stripe: one PaymentIntent, its
 * refunds and its disputes. The machine never talks to Stripe and never moves the wallet's money:
 * it decides, from what Stripe reports and what callers ask, what the deposit now is, and its
 * effects name the wallet steps that follow (credit, refund debit, dispute debit, …), which the
 * deposit saga (src/workers/deposit-saga.ts) sends to the wallet's actor, keyed by step.
 *
 * Ids and times arrive inside commands: the machine invents neither, so replaying the same
 * commands gives the same effects. Amounts are bigint minor units of the deposit's asset.
 */
interface Stamp {
  /** ISO-8601 time the host accepted the command. */
  at: string;
}

/** What Stripe says a PaymentIntent came to (only the outcomes that matter to a wallet). */
export type PaymentOutcome = "succeeded" | "failed" | "canceled";

/**
 * A refund's life. `requested`: Coffer reserved it and its saga debits the wallet and asks Stripe;
 * `pending`: Stripe has it and has not finished; then `succeeded` or `failed` (Stripe's word), or
 * `canceled` (Coffer dropped it before Stripe heard of it: the wallet could not pay it back).
 */
export type RefundStatus = "requested" | "pending" | "succeeded" | "failed" | "canceled";

/** What Stripe reports about a refund (`requires_action` counts as pending). */
export type ReportedRefundStatus = "pending" | "succeeded" | "failed" | "canceled";

/** A dispute (chargeback) as Coffer tracks it: open until Stripe closes it won or lost. */
export type DisputeStatus = "open" | "won" | "lost";

export type DepositStatus =
  | "pending"
  | "succeeded"
  | "partially_refunded"
  | "refunded"
  | "disputed"
  | "charged_back"
  | "failed"
  | "canceled";

/** The wallet step an effect asks the saga to take (each keyed by its object and step, so once). */
export type WalletMove =
  /** deposit: system:stripe_clearing → wallet */
  | "credit"
  /** a refund Coffer asked for: wallet → clearing, only from the available balance */
  | "refund_debit"
  /** a refund made at Stripe directly (the dashboard): wallet → clearing, into debt if spent */
  | "refund_force_debit"
  /** a refund that failed after its debit: clearing → wallet */
  | "refund_return"
  /** a dispute opened (or found lost): wallet → system:stripe_disputes, into debt if spent */
  | "dispute_debit"
  /** a dispute won: system:stripe_disputes → wallet */
  | "dispute_return";

export type DepositCommand = Stamp &
  (
    | { type: "deposit.open"; depositId: string; walletId: string; ownerId: string; asset: string; amount: bigint; paymentIntentId: string }
    /** The same as open, by Coffer itself: a PaymentIntent Stripe reports that the API never recorded (the node died after Stripe answered). */
    | { type: "deposit.adopt"; depositId: string; walletId: string; ownerId: string; asset: string; amount: bigint; paymentIntentId: string }
    /** What Stripe reports of the payment; `currency` is the ISO code upper-cased, `amountReceived` in its minor units. */
    | { type: "deposit.payment"; status: PaymentOutcome; amountReceived: bigint; currency: string; reason?: string }
    /** A caller asks for money back; no amount: all that is left. */
    | { type: "deposit.refund.request"; refundId: string; amount?: bigint }
    /** The wallet could not pay the refund back (spent, in debt, frozen): drop it before Stripe hears of it. */
    | { type: "deposit.refund.cancel"; refundId: string; reason: string }
    /**
     * What Stripe reports of a refund (its API answer or an event). `refundId` is Coffer's own (from
     * the refund's metadata) or, for one made at Stripe directly, derived from `stripeRefundId`.
     * No `stripeRefundId`: Stripe refused to make the refund at all (the saga reports it failed).
     */
    | { type: "deposit.refund.report"; refundId: string; stripeRefundId?: string; amount: bigint; status: ReportedRefundStatus; reason?: string }
    /** What Stripe reports of a dispute. */
    | { type: "deposit.dispute"; disputeId: string; amount: bigint; status: DisputeStatus; reason?: string }
  );

export type DepositCommandType = DepositCommand["type"];

export type DepositRejectionCode =
  | "DEPOSIT_NOT_FOUND"
  | "DEPOSIT_EXISTS"
  | "INVALID_TRANSITION"
  | "REFUND_EXCEEDS_DEPOSIT"
  | "ASSET_MISMATCH"
  | "LIMIT_EXCEEDED";

interface Subject {
  depositId: string;
  walletId: string;
  asset: string;
  at: string;
}

export type DepositEffect =
  | { type: "rejected"; code: DepositRejectionCode; detail: string }
  | (Subject & { type: "deposit.opened"; amount: bigint; paymentIntentId: string; adopted: boolean })
  | (Subject & { type: "deposit.succeeded"; amount: bigint; move: "credit" })
  | (Subject & { type: "deposit.failed"; reason?: string })
  | (Subject & { type: "deposit.canceled"; reason?: string })
  | (Subject & {
      type: "deposit.refund.changed";
      refundId: string;
      amount: bigint;
      status: RefundStatus;
      from?: RefundStatus;
      external: boolean;
      stripeRefundId?: string;
      reason?: string;
      move?: WalletMove;
    })
  | (Subject & { type: "deposit.dispute.changed"; disputeId: string; amount: bigint; status: DisputeStatus; from?: DisputeStatus; reason?: string; move?: WalletMove });
