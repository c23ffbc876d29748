import { emit, enqueueActions, setup } from "xstate";
import type {
  DepositCommand,
  DepositEffect,
  DepositRejectionCode,
  DepositStatus,
  DisputeStatus,
  RefundStatus,
  ReportedRefundStatus,
  WalletMove,
} from "./deposit.events";
import { STORABLE_CEILING, type AmountCeiling } from "./limits";

/**
 * One card deposit (a Stripe PaymentIntent) into one wallet:
 *
 *   unopened → pending → succeeded | failed | canceled
 *   failed → succeeded (the card holder tried again) | canceled
 *   succeeded ⇄ partially_refunded ⇄ refunded, and any of them ⇄ disputed → charged_back (lost)
 *
 * The money states after `succeeded` are not chosen by the command but follow from the amounts
 * (statusOf): a refund that succeeds, fails or is reported out of order, a dispute that opens,
 * is won or is lost, each leaves the deposit in the one status its amounts say. That is what
 * makes the machine order-independent: Stripe's events may arrive twice, late or shuffled, and each
 * report only ever moves a refund or a dispute forward (a stale one is refused and changes nothing).
 *
 * Pure: commands in, new state and effects (emitted events) out. No clock, no I/O, no Stripe.
 * A command a state does not take is refused with a `rejected` effect (INVALID_TRANSITION, or the
 * specific code), and changes nothing.
 */
export const DEPOSIT_MACHINE_VERSION = 1;

/** Bounds (TigerStyle): refunds a caller may ask for on one deposit, and reports one deposit keeps. */
export const DEPOSIT_LIMITS = { refundsRequestedMax: 100, refundsMax: 1_000, disputesMax: 100 } as const;

export interface DepositRefund {
  amount: bigint;
  status: RefundStatus;
  /** Made at Stripe directly (not asked through Coffer). */
  external: boolean;
  stripeRefundId?: string;
  reason?: string;
  createdAt: string;
  updatedAt: string;
}

export interface DepositDispute {
  amount: bigint;
  status: DisputeStatus;
  reason?: string;
  createdAt: string;
  updatedAt: string;
}

export interface DepositContext {
  depositId: string;
  walletId: string;
  ownerId: string;
  asset: string;
  /** What was asked for. */
  amount: bigint;
  paymentIntentId: string;
  /** What Stripe says arrived (amount_received), once the payment succeeded. */
  received: bigint;
  refunds: Record<string, DepositRefund>;
  disputes: Record<string, DepositDispute>;
  failure?: string;
  createdAt: string;
  updatedAt: string;
}

export function emptyDepositContext(depositId: string): DepositContext {
  return { depositId, walletId: "", ownerId: "", asset: "", amount: 0n, paymentIntentId: "", received: 0n, refunds: {}, disputes: {}, createdAt: "", updatedAt: "" };
}

const own = <T>(record: Record<string, T>, key: string): T | undefined => (Object.hasOwn(record, key) ? record[key] : undefined);

const sum = <T>(record: Record<string, T>, pick: (item: T) => bigint): bigint => {
  let total = 0n;
  for (const item of Object.values(record)) total += pick(item);
  return total;
};

/** Refunds that went through. */
export const refundedOf = (c: DepositContext) => sum(c.refunds, (r) => (r.status === "succeeded" ? r.amount : 0n));
/** Refunds on their way (asked, or at Stripe and not final): promised, so not refundable again. */
export const refundsInFlightOf = (c: DepositContext) => sum(c.refunds, (r) => (r.status === "requested" || r.status === "pending" ? r.amount : 0n));
/** Disputes still open. */
export const disputedOf = (c: DepositContext) => sum(c.disputes, (d) => (d.status === "open" ? d.amount : 0n));
/** Disputes lost: that money went back to the card holder for good. */
export const chargedBackOf = (c: DepositContext) => sum(c.disputes, (d) => (d.status === "lost" ? d.amount : 0n));

/** What may still be refunded: received, less what was refunded, is being refunded, or is disputed. */
export function refundableOf(c: DepositContext): bigint {
  const left = c.received - refundedOf(c) - refundsInFlightOf(c) - disputedOf(c) - chargedBackOf(c);
  return left > 0n ? left : 0n;
}

type SettledStatus = Extract<DepositStatus, "succeeded" | "partially_refunded" | "refunded" | "disputed" | "charged_back">;
const SETTLED: readonly SettledStatus[] = ["succeeded", "partially_refunded", "refunded", "disputed", "charged_back"];

/** The status a deposit whose payment succeeded is in, from its amounts alone. */
export function statusOf(c: DepositContext): SettledStatus {
  if (disputedOf(c) > 0n) return "disputed";
  if (chargedBackOf(c) > 0n) return "charged_back";
  const refunded = refundedOf(c);
  if (refunded > 0n && refunded >= c.received) return "refunded";
  if (refunded > 0n) return "partially_refunded";
  return "succeeded";
}

type Ev<T extends DepositCommand["type"]> = Extract<DepositCommand, { type: T }>;
type Args = { context: DepositContext; event: DepositCommand };

const reject = (code: DepositRejectionCode, detail: string) => ({ type: "reject", params: { code, detail } }) as const;
const subject = (c: DepositContext, at: string) => ({ depositId: c.depositId, walletId: c.walletId, asset: c.asset, at });

/** A refund report's next status for a refund in `from`, or undefined when it changes nothing (stale or repeated). */
function nextRefundStatus(from: RefundStatus, reported: ReportedRefundStatus): RefundStatus | undefined {
  if (from === "failed" || from === "canceled") return undefined; // final
  if (reported === from) return undefined;
  if (from === "succeeded") return reported === "failed" || reported === "canceled" ? "failed" : undefined; // a refund Stripe later failed
  if (reported === "canceled") return "failed"; // Stripe canceled it: for the wallet, the same as failed
  return reported;
}

/** A dispute report's next status, or undefined when it changes nothing. */
function nextDisputeStatus(from: DisputeStatus, reported: DisputeStatus): DisputeStatus | undefined {
  return from === "open" && reported !== "open" ? reported : undefined;
}

/** The wallet step a refund's change needs (the debit of a Coffer refund is its saga's first step, see `requested`). */
function refundMove(refund: { external: boolean }, from: RefundStatus | undefined, to: RefundStatus): WalletMove | undefined {
  const moneyOut = (s: RefundStatus | undefined) => s === "pending" || s === "succeeded" || (s === "requested" && !refund.external);
  if (from === undefined) return to === "requested" ? "refund_debit" : moneyOut(to) ? "refund_force_debit" : undefined;
  if (moneyOut(from) && !moneyOut(to)) return "refund_return";
  return undefined;
}

const REFUND_REQUEST = [
  { guard: "notPositive", actions: reject("LIMIT_EXCEEDED", "a refund's amount must be positive") },
  { guard: "refundExists", actions: reject("INVALID_TRANSITION", "a refund with this id already exists") },
  { guard: "tooManyRefunds", actions: reject("LIMIT_EXCEEDED", `a deposit takes at most ${DEPOSIT_LIMITS.refundsRequestedMax} refunds`) },
  { guard: "exceedsRefundable", actions: reject("REFUND_EXCEEDS_DEPOSIT", "refunds may not add up to more than was received (less what was refunded, is being refunded or is disputed)") },
  { actions: "requestRefund" },
] as const;
const REFUND_WHILE_DISPUTED = [{ actions: reject("INVALID_TRANSITION", "the deposit is disputed: it cannot be refunded while the dispute is open") }] as const;

export const depositMachine = setup({
  types: {} as {
    context: DepositContext;
    events: DepositCommand;
    emitted: DepositEffect;
    input: { depositId: string };
  },
  actions: {
    reject: emit((_, params: { code: DepositRejectionCode; detail: string }) => ({ type: "rejected" as const, ...params })),
    open: enqueueActions(({ event, enqueue }) => {
      const e = event as Ev<"deposit.open" | "deposit.adopt">;
      enqueue.assign({
        depositId: e.depositId,
        walletId: e.walletId,
        ownerId: e.ownerId,
        asset: e.asset,
        amount: e.amount,
        paymentIntentId: e.paymentIntentId,
        createdAt: e.at,
        updatedAt: e.at,
      });
      enqueue.emit({
        type: "deposit.opened",
        depositId: e.depositId,
        walletId: e.walletId,
        asset: e.asset,
        at: e.at,
        amount: e.amount,
        paymentIntentId: e.paymentIntentId,
        adopted: e.type === "deposit.adopt",
      });
    }),
    succeed: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.payment">;
      enqueue.assign({ received: e.amountReceived, updatedAt: e.at });
      enqueue.emit({ type: "deposit.succeeded", ...subject(context, e.at), amount: e.amountReceived, move: "credit" });
    }),
    fail: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.payment">;
      enqueue.assign({ failure: e.reason ?? "payment_failed", updatedAt: e.at });
      enqueue.emit({ type: "deposit.failed", ...subject(context, e.at), ...(e.reason ? { reason: e.reason } : {}) });
    }),
    cancel: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.payment">;
      enqueue.assign({ updatedAt: e.at, ...(e.reason ? { failure: e.reason } : {}) });
      enqueue.emit({ type: "deposit.canceled", ...subject(context, e.at), ...(e.reason ? { reason: e.reason } : {}) });
    }),
    requestRefund: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.refund.request">;
      const amount = e.amount ?? refundableOf(context);
      const refund: DepositRefund = { amount, status: "requested", external: false, createdAt: e.at, updatedAt: e.at };
      enqueue.assign({ refunds: { ...context.refunds, [e.refundId]: refund }, updatedAt: e.at });
      enqueue.emit({ type: "deposit.refund.changed", ...subject(context, e.at), refundId: e.refundId, amount, status: "requested", external: false, move: "refund_debit" });
    }),
    cancelRefund: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.refund.cancel">;
      const refund = own(context.refunds, e.refundId)!;
      enqueue.assign({ refunds: { ...context.refunds, [e.refundId]: { ...refund, status: "canceled", reason: e.reason, updatedAt: e.at } }, updatedAt: e.at });
      enqueue.emit({ type: "deposit.refund.changed", ...subject(context, e.at), refundId: e.refundId, amount: refund.amount, status: "canceled", from: "requested", external: false, reason: e.reason });
    }),
    reportRefund: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.refund.report">;
      const found = findRefund(context, e);
      const reason = e.reason ? { reason: e.reason } : {};
      if (!found) {
        // Made at Stripe directly: Coffer learns of it here and books what it did.
        const status: RefundStatus = e.status === "canceled" ? "failed" : e.status;
        const refund: DepositRefund = { amount: e.amount, status, external: true, ...stripeIdOf(e), ...reason, createdAt: e.at, updatedAt: e.at };
        const move = refundMove(refund, undefined, status);
        enqueue.assign({ refunds: { ...context.refunds, [e.refundId]: refund }, updatedAt: e.at });
        enqueue.emit({ type: "deposit.refund.changed", ...subject(context, e.at), refundId: e.refundId, amount: e.amount, status, external: true, ...stripeIdOf(e), ...reason, ...(move ? { move } : {}) });
        return;
      }
      const [refundId, refund] = found;
      const status = nextRefundStatus(refund.status, e.status)!;
      const move = refundMove(refund, refund.status, status);
      const next: DepositRefund = { ...refund, status, ...(e.stripeRefundId ? { stripeRefundId: e.stripeRefundId } : {}), ...reason, updatedAt: e.at };
      enqueue.assign({ refunds: { ...context.refunds, [refundId]: next }, updatedAt: e.at });
      enqueue.emit({
        type: "deposit.refund.changed",
        ...subject(context, e.at),
        refundId,
        amount: refund.amount,
        status,
        from: refund.status,
        external: refund.external,
        ...(next.stripeRefundId ? { stripeRefundId: next.stripeRefundId } : {}),
        ...(next.reason ? { reason: next.reason } : {}),
        ...(move ? { move } : {}),
      });
    }),
    reportDispute: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"deposit.dispute">;
      const known = own(context.disputes, e.disputeId);
      const reason = e.reason ? { reason: e.reason } : {};
      // Money leaves when a dispute opens, or when the first word of it is that it was lost; it
      // returns when an open one is won. A dispute first heard of as won never took anything.
      const move: WalletMove | undefined = known
        ? e.status === "won" ? "dispute_return" : undefined
        : e.status === "won" ? undefined : "dispute_debit";
      const dispute: DepositDispute = known
        ? { ...known, status: e.status, ...reason, updatedAt: e.at }
        : { amount: e.amount, status: e.status, ...reason, createdAt: e.at, updatedAt: e.at };
      enqueue.assign({ disputes: { ...context.disputes, [e.disputeId]: dispute }, updatedAt: e.at });
      enqueue.emit({
        type: "deposit.dispute.changed",
        ...subject(context, e.at),
        disputeId: e.disputeId,
        amount: dispute.amount,
        status: e.status,
        ...(known ? { from: known.status } : {}),
        ...(dispute.reason ? { reason: dispute.reason } : {}),
        ...(move ? { move } : {}),
      });
    }),
  },
  guards: {
    overMaximum: ({ context, event }: Args) => "amount" in event && event.amount !== undefined && event.amount > STORABLE_CEILING(context.asset || "USD"),
    notPositive: ({ event }: Args) => "amount" in event && event.amount !== undefined && event.amount <= 0n,
    paidInOtherCurrency: ({ context, event }: Args) => event.type === "deposit.payment" && event.status === "succeeded" && event.currency !== context.asset,
    paidNothing: ({ event }: Args) => event.type === "deposit.payment" && event.status === "succeeded" && event.amountReceived <= 0n,
    paidOverMaximum: ({ context, event }: Args) => event.type === "deposit.payment" && event.amountReceived > STORABLE_CEILING(context.asset),
    paymentSucceeded: ({ event }: Args) => event.type === "deposit.payment" && event.status === "succeeded",
    paymentFailed: ({ event }: Args) => event.type === "deposit.payment" && event.status === "failed",
    paymentCanceled: ({ event }: Args) => event.type === "deposit.payment" && event.status === "canceled",
    refundExists: ({ context, event }: Args) => event.type === "deposit.refund.request" && own(context.refunds, event.refundId) !== undefined,
    tooManyRefunds: ({ context }: Args) => Object.values(context.refunds).filter((r) => !r.external).length >= DEPOSIT_LIMITS.refundsRequestedMax,
    exceedsRefundable: ({ context, event }: Args) => {
      if (event.type !== "deposit.refund.request") return false;
      const refundable = refundableOf(context);
      return event.amount === undefined ? refundable === 0n : event.amount > refundable;
    },
    refundIsRequested: ({ context, event }: Args) => event.type === "deposit.refund.cancel" && own(context.refunds, event.refundId)?.status === "requested",
    refundReportChangesNothing: ({ context, event }: Args) => {
      if (event.type !== "deposit.refund.report") return true;
      const found = findRefund(context, event);
      return found ? nextRefundStatus(found[1].status, event.status) === undefined : false;
    },
    tooManyReports: ({ context, event }: Args) =>
      (event.type === "deposit.refund.report" && !findRefund(context, event) && Object.keys(context.refunds).length >= DEPOSIT_LIMITS.refundsMax) ||
      (event.type === "deposit.dispute" && own(context.disputes, event.disputeId) === undefined && Object.keys(context.disputes).length >= DEPOSIT_LIMITS.disputesMax),
    disputeReportChangesNothing: ({ context, event }: Args) => {
      if (event.type !== "deposit.dispute") return true;
      const known = own(context.disputes, event.disputeId);
      return known !== undefined && nextDisputeStatus(known.status, event.status) === undefined;
    },
    is_succeeded: ({ context }: Args) => statusOf(context) === "succeeded",
    is_partially_refunded: ({ context }: Args) => statusOf(context) === "partially_refunded",
    is_refunded: ({ context }: Args) => statusOf(context) === "refunded",
    is_disputed: ({ context }: Args) => statusOf(context) === "disputed",
    is_charged_back: ({ context }: Args) => statusOf(context) === "charged_back",
  },
}).createMachine({
  id: "deposit",
  initial: "unopened",
  context: ({ input }) => emptyDepositContext(input.depositId),
  states: {
    unopened: {
      on: {
        "deposit.open": [
          { guard: "notPositive", actions: reject("LIMIT_EXCEEDED", "a deposit's amount must be positive") },
          { guard: "overMaximum", actions: reject("LIMIT_EXCEEDED", "the amount is above the configured maximum") },
          { target: "pending", actions: "open" },
        ],
        "deposit.adopt": [{ guard: "notPositive", actions: reject("LIMIT_EXCEEDED", "a deposit's amount must be positive") }, { target: "pending", actions: "open" }],
        "*": { actions: reject("DEPOSIT_NOT_FOUND", "deposit not found") },
      },
    },
    pending: {
      on: {
        "deposit.payment": [
          ...paymentRefusals(),
          { guard: "paymentSucceeded", target: "succeeded", actions: "succeed" },
          { guard: "paymentFailed", target: "failed", actions: "fail" },
          { guard: "paymentCanceled", target: "canceled", actions: "cancel" },
        ],
        "deposit.refund.request": { actions: reject("INVALID_TRANSITION", "nothing was received yet: only a succeeded deposit can be refunded") },
      },
    },
    failed: {
      on: {
        // A failed attempt is not the end at Stripe: the card holder may pay with another card.
        "deposit.payment": [
          ...paymentRefusals(),
          { guard: "paymentSucceeded", target: "succeeded", actions: "succeed" },
          { guard: "paymentCanceled", target: "canceled", actions: "cancel" },
          { actions: reject("INVALID_TRANSITION", "the payment already failed") },
        ],
        "deposit.refund.request": { actions: reject("INVALID_TRANSITION", "the payment failed: nothing was received") },
      },
    },
    canceled: {
      on: {
        "deposit.payment": { actions: reject("INVALID_TRANSITION", "the payment was canceled") },
        "deposit.refund.request": { actions: reject("INVALID_TRANSITION", "the payment was canceled: nothing was received") },
        "deposit.refund.report": { actions: reject("INVALID_TRANSITION", "the payment was canceled: there is nothing to refund") },
        "deposit.dispute": { actions: reject("INVALID_TRANSITION", "the payment was canceled: there is nothing to dispute") },
      },
    },
    succeeded: settled("succeeded"),
    partially_refunded: settled("partially_refunded"),
    refunded: settled("refunded"),
    disputed: settled("disputed"),
    charged_back: settled("charged_back"),
  },
  // Refund and dispute reports are taken in every state but unopened (which refuses everything)
  // and canceled: Stripe may report a refund or a dispute before the payment's own success.
  on: {
    "deposit.open": { actions: reject("DEPOSIT_EXISTS", "a deposit with this id already exists") },
    "deposit.adopt": { actions: reject("DEPOSIT_EXISTS", "a deposit with this id already exists") },
    "deposit.refund.cancel": [
      { guard: "refundIsRequested", actions: "cancelRefund" },
      { actions: reject("INVALID_TRANSITION", "only a refund not yet sent to Stripe can be canceled") },
    ],
    "deposit.refund.report": [
      { guard: "notPositive", actions: reject("INVALID_TRANSITION", "a refund's amount must be positive") },
      { guard: "refundReportChangesNothing", actions: reject("INVALID_TRANSITION", "the refund is already known in this status or a later one") },
      { guard: "tooManyReports", actions: reject("LIMIT_EXCEEDED", "this deposit has as many refunds as it may keep") },
      { actions: "reportRefund" },
    ],
    "deposit.dispute": [
      { guard: "notPositive", actions: reject("INVALID_TRANSITION", "a dispute's amount must be positive") },
      { guard: "disputeReportChangesNothing", actions: reject("INVALID_TRANSITION", "the dispute is already known in this status or a later one") },
      { guard: "tooManyReports", actions: reject("LIMIT_EXCEEDED", "this deposit has as many disputes as it may keep") },
      { actions: "reportDispute" },
    ],
  },
});

function paymentRefusals() {
  return [
    { guard: "paidInOtherCurrency", actions: reject("ASSET_MISMATCH", "the payment arrived in another currency than the wallet's asset") },
    { guard: "paidNothing", actions: reject("INVALID_TRANSITION", "a succeeded payment must have received something") },
    { guard: "paidOverMaximum", actions: reject("LIMIT_EXCEEDED", "the amount received is above what can be stored") },
  ] as const;
}

/**
 * A deposit whose payment succeeded: refunds may be asked for (from what is left), and whatever
 * its refunds and disputes come to, it moves to the status its amounts say (`always`).
 */
function settled(self: SettledStatus) {
  return {
    always: SETTLED.filter((s) => s !== self).map((s) => ({ guard: `is_${s}` as const, target: s })),
    on: {
      "deposit.payment": { actions: reject("INVALID_TRANSITION", "the payment already succeeded") },
      "deposit.refund.request": self === "disputed" ? REFUND_WHILE_DISPUTED : REFUND_REQUEST,
    },
  } as const;
}

const stripeIdOf = (e: { stripeRefundId?: string }) => (e.stripeRefundId ? { stripeRefundId: e.stripeRefundId } : {});

/** The refund a report is about: Coffer's id first, then Stripe's id (a report without Coffer's metadata). */
function findRefund(context: DepositContext, e: Ev<"deposit.refund.report">): [string, DepositRefund] | undefined {
  const byId = own(context.refunds, e.refundId);
  if (byId) return [e.refundId, byId];
  if (e.stripeRefundId === undefined) return undefined;
  for (const [id, refund] of Object.entries(context.refunds)) if (refund.stripeRefundId === e.stripeRefundId) return [id, refund];
  return undefined;
}

/** The deposit machine refusing amounts above `ceiling` (the configured maximum) where a caller names one. */
export function depositMachineWith(ceiling: AmountCeiling) {
  return depositMachine.provide({
    guards: { overMaximum: ({ context, event }) => "amount" in event && event.amount !== undefined && event.amount > ceiling((event as { asset?: string }).asset ?? context.asset) },
  });
}
