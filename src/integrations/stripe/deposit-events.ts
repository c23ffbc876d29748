import type Stripe from "stripe";
import type { Reply } from "../../../actors/envelope";
import type { DepositCommand, DisputeStatus } from "../../../machines/deposit.events";
import { log, reason } from "../../../lib/log";
import type { DepositService } from "../../api/deposit-service";
import { idFromKey } from "../../api/ids";
import type { WalletService } from "../../api/wallet-service";
import { refundStatusOf } from "../../workers/deposit-saga";
import { classify, METADATA } from "./client";
import type { EventOutcome, WebhookDispatcher } from "./events";
import { assetOfCurrency, fromStripeAmount } from "./money";

/**
 * What Stripe's events mean for card deposits. Each handler reads the object as Stripe reports it
 * in the event (a PaymentIntent, a charge, a refund, a dispute), finds the deposit it belongs to
 * (by the Coffer metadata on it, or by its PaymentIntent), and tells the deposit's actor what
 * Stripe says, keyed by the event's id. The actor decides (machines/deposit.machine.ts); a report
 * that is stale or repeated changes nothing, which is what makes delivery order irrelevant:
 *
 * - payment_intent.succeeded / payment_failed / canceled: the payment's outcome, with
 *   `amount_received` in the PaymentIntent's currency;
 * - charge.refunded: the charge's own outcome first (a charge that was refunded was paid: this is
 *   how a refund that arrives before payment_intent.succeeded still ends right), then each of its
 *   refunds (listed from Stripe when the event does not carry them);
 * - charge.refund.updated: one refund;
 * - charge.dispute.created / closed: a dispute, open, or won / lost.
 *
 * Objects that are not Coffer's are ignored. A payment in another currency than the wallet's, or
 * for another wallet than the deposit's, credits nothing and is an alert.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Found {
  id: string;
  walletId: string;
  asset: string;
}

export function registerDepositHandlers(dispatcher: WebhookDispatcher, deposits: DepositService, wallets: WalletService, stripe: Stripe): void {
  const handlers = new DepositEventHandlers(deposits, wallets, stripe);
  for (const type of ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"]) {
    dispatcher.register(type, (e) => handlers.paymentIntent(e));
  }
  dispatcher.register("charge.refunded", (e) => handlers.chargeRefunded(e));
  dispatcher.register("charge.refund.updated", (e) => handlers.refundUpdated(e));
  dispatcher.register("charge.dispute.created", (e) => handlers.dispute(e, "created"));
  dispatcher.register("charge.dispute.closed", (e) => handlers.dispute(e, "closed"));
}

class DepositEventHandlers {
  constructor(
    private readonly deposits: DepositService,
    private readonly wallets: WalletService,
    private readonly stripe: Stripe,
  ) {}

  async paymentIntent(event: Stripe.Event): Promise<EventOutcome | "retry"> {
    const pi = event.data.object as Stripe.PaymentIntent;
    const metadataId = pi.metadata?.[METADATA.depositId];
    let deposit = await this.find(pi.id, metadataId);
    if (deposit === "mismatch") return "alert: the PaymentIntent's Coffer metadata names a deposit of another PaymentIntent";
    if (!deposit) {
      if (!metadataId) return "ignored: not a Coffer PaymentIntent";
      // Coffer made it (its metadata says so) but never recorded it: the node died between Stripe's
      // answer and the deposit's commit. Stripe is the truth: take the deposit up from it.
      const adopted = await this.adopt(event, pi, metadataId);
      if (typeof adopted === "string") return adopted;
      deposit = adopted;
    }
    if (pi.metadata?.[METADATA.walletId] && pi.metadata[METADATA.walletId] !== deposit.walletId) {
      return "alert: the PaymentIntent names another wallet than its deposit's; nothing credited";
    }
    const command = paymentCommand(event, pi);
    if (!command) return "ignored: nothing to report for this PaymentIntent";
    if (command.status === "succeeded" && command.currency !== deposit.asset) {
      return `alert: the payment arrived in ${command.currency}, the wallet holds ${deposit.asset}; nothing credited`;
    }
    return this.tell(deposit, `stripe:${event.id}`, command);
  }

  async chargeRefunded(event: Stripe.Event): Promise<EventOutcome | "retry"> {
    const charge = event.data.object as Stripe.Charge;
    const deposit = await this.find(idOf(charge.payment_intent), charge.metadata?.[METADATA.depositId]);
    if (deposit === "mismatch") return "alert: the charge's Coffer metadata names a deposit of another PaymentIntent";
    if (!deposit) return "ignored: not a Coffer charge";
    // A charge that was refunded was paid: say so first, in case payment_intent.succeeded is late.
    const paid = chargePayment(charge);
    if (paid) {
      if (paid.currency !== deposit.asset) return `alert: the charge is in ${paid.currency}, the wallet holds ${deposit.asset}; nothing credited`;
      const told = await this.tell(deposit, `stripe:${event.id}:payment`, paid);
      if (told === "retry" || told.startsWith("alert")) return told;
    }
    let refunds: Stripe.Refund[];
    try {
      refunds = charge.refunds?.data && !charge.refunds.has_more ? charge.refunds.data : await this.listRefunds(charge.id);
    } catch (error) {
      log("warn", "stripe: listing a charge's refunds failed; will retry", { chargeId: charge.id, error: reason(error) });
      return classify(error).kind === "refused" ? "alert: Stripe would not list the charge's refunds" : "retry";
    }
    // Each refund on its own key: a retry of this event re-tells only what did not get through.
    const outcomes: (EventOutcome | "retry")[] = [];
    for (const refund of refunds) outcomes.push(await this.tellRefund(deposit, `stripe:${event.id}:${refund.id}`, refund));
    if (outcomes.includes("retry")) return "retry";
    return outcomes.find((o) => o.startsWith("alert")) ?? (outcomes.includes("applied") ? "applied" : "ignored: already known");
  }

  async refundUpdated(event: Stripe.Event): Promise<EventOutcome | "retry"> {
    const refund = event.data.object as Stripe.Refund;
    const deposit = await this.find(idOf(refund.payment_intent), refund.metadata?.[METADATA.depositId]);
    if (deposit === "mismatch") return "alert: the refund's Coffer metadata names a deposit of another PaymentIntent";
    if (!deposit) return "ignored: not a refund of a Coffer deposit";
    return this.tellRefund(deposit, `stripe:${event.id}`, refund);
  }

  async dispute(event: Stripe.Event, phase: "created" | "closed"): Promise<EventOutcome | "retry"> {
    const dispute = event.data.object as Stripe.Dispute;
    let paymentIntentId = idOf(dispute.payment_intent);
    if (!paymentIntentId && idOf(dispute.charge)) {
      try {
        paymentIntentId = idOf((await this.stripe.charges.retrieve(idOf(dispute.charge)!)).payment_intent);
      } catch (error) {
        log("warn", "stripe: reading a disputed charge failed; will retry", { disputeId: dispute.id, error: reason(error) });
        return classify(error).kind === "refused" ? "ignored: the disputed charge is unknown to Stripe" : "retry";
      }
    }
    const deposit = paymentIntentId ? await this.find(paymentIntentId, undefined) : undefined;
    if (deposit === "mismatch") return "alert: the dispute's PaymentIntent is another deposit's";
    if (!deposit) return "ignored: not a dispute of a Coffer deposit";
    const amount = fromStripeAmount(dispute.amount);
    if (amount === undefined || amount === 0n) return "alert: the dispute's amount is not a positive integer of minor units";
    if (assetOfCurrency(dispute.currency) !== deposit.asset) return `alert: the dispute is in ${assetOfCurrency(dispute.currency)}, the wallet holds ${deposit.asset}`;
    const status = disputeStatusOf(phase, dispute.status);
    return this.tell(deposit, `stripe:${event.id}`, { type: "deposit.dispute", disputeId: dispute.id, amount, status, ...(dispute.reason ? { reason: String(dispute.reason).slice(0, 200) } : {}), at: now() });
  }

  private tellRefund(deposit: Found, key: string, refund: Stripe.Refund): Promise<EventOutcome | "retry"> {
    const amount = fromStripeAmount(refund.amount);
    if (amount === undefined || amount === 0n) return Promise.resolve<EventOutcome>("alert: a refund's amount is not a positive integer of minor units");
    if (assetOfCurrency(refund.currency) !== deposit.asset) return Promise.resolve<EventOutcome>(`alert: a refund is in ${assetOfCurrency(refund.currency)}, the wallet holds ${deposit.asset}`);
    const cofferId = refund.metadata?.[METADATA.refundId];
    // Coffer's own refunds carry their id; one made at Stripe directly gets one derived from Stripe's.
    const refundId = cofferId && UUID.test(cofferId) ? cofferId : idFromKey("stripe-refund", "", refund.id);
    return this.tell(deposit, key, {
      type: "deposit.refund.report",
      refundId,
      stripeRefundId: refund.id,
      amount,
      status: refundStatusOf(refund.status),
      ...(refund.failure_reason ? { reason: String(refund.failure_reason).slice(0, 200) } : {}),
      at: now(),
    });
  }

  private async listRefunds(chargeId: string): Promise<Stripe.Refund[]> {
    const refunds: Stripe.Refund[] = [];
    // Bounded: a charge has few refunds; a deposit keeps at most DEPOSIT_LIMITS.refundsMax.
    for await (const refund of this.stripe.refunds.list({ charge: chargeId, limit: 100 })) {
      refunds.push(refund);
      if (refunds.length >= 1_000) break;
    }
    return refunds;
  }

  /** Tell the deposit's actor; done unless the ledger did not answer. */
  private async tell(deposit: Found, key: string, command: DepositCommand): Promise<EventOutcome | "retry"> {
    if (!(await this.deposits.wouldChange(deposit.id, command))) return "ignored: already known";
    const reply: Reply = await this.deposits.system(deposit.id, key, command);
    if (reply.status >= 500) return "retry";
    if (reply.status < 300) return "applied";
    const code = String(reply.body.code ?? "");
    if (code === "ASSET_MISMATCH" || code === "LIMIT_EXCEEDED") return `alert: the deposit refused Stripe's report (${code})`;
    return `ignored: ${code === "INVALID_TRANSITION" ? "already known" : code.toLowerCase()}`;
  }

  /** The deposit a Stripe object belongs to, by its Coffer metadata or its PaymentIntent; "mismatch" when the two disagree. */
  private async find(paymentIntentId: string | undefined, metadataId: string | undefined): Promise<Found | "mismatch" | undefined> {
    if (metadataId && UUID.test(metadataId)) {
      const found = await this.deposits.read(metadataId);
      if (found) {
        if (paymentIntentId && found.context.paymentIntentId !== paymentIntentId) return "mismatch";
        return { id: metadataId, walletId: found.context.walletId, asset: found.context.asset };
      }
    }
    return paymentIntentId ? this.deposits.byPaymentIntent(paymentIntentId) : undefined;
  }

  private async adopt(event: Stripe.Event, pi: Stripe.PaymentIntent, depositId: string): Promise<Found | EventOutcome | "retry"> {
    const walletId = pi.metadata?.[METADATA.walletId];
    const amount = fromStripeAmount(pi.amount);
    if (!UUID.test(depositId) || !walletId || !UUID.test(walletId) || amount === undefined || amount === 0n) return "alert: a Coffer PaymentIntent with unreadable metadata";
    let wallet;
    try {
      wallet = await this.wallets.meta(walletId);
    } catch {
      return "alert: a Coffer PaymentIntent for a wallet that does not exist";
    }
    if (assetOfCurrency(pi.currency) !== wallet.asset) return `alert: a Coffer PaymentIntent in ${assetOfCurrency(pi.currency)} for a ${wallet.asset} wallet`;
    const reply = await this.deposits.system(depositId, `stripe:${event.id}:adopt`, {
      type: "deposit.adopt",
      depositId,
      walletId,
      ownerId: wallet.ownerId,
      asset: wallet.asset,
      amount,
      paymentIntentId: pi.id,
      at: now(),
    });
    if (reply.status >= 500) return "retry";
    if (reply.status >= 300 && reply.body.code !== "DEPOSIT_EXISTS") return `alert: the deposit could not be taken up (${String(reply.body.code)})`;
    log("warn", "a deposit Stripe knows and Coffer never recorded was taken up from its PaymentIntent", { depositId, paymentIntentId: pi.id });
    return { id: depositId, walletId, asset: wallet.asset };
  }
}

/** A PaymentIntent event as the deposit's payment report; undefined when it says nothing final. */
function paymentCommand(event: Stripe.Event, pi: Stripe.PaymentIntent): Extract<DepositCommand, { type: "deposit.payment" }> | undefined {
  const currency = assetOfCurrency(pi.currency);
  const at = now();
  if (event.type === "payment_intent.succeeded" || pi.status === "succeeded") {
    const received = fromStripeAmount(pi.amount_received);
    if (received === undefined) return undefined;
    return { type: "deposit.payment", status: "succeeded", amountReceived: received, currency, at };
  }
  if (event.type === "payment_intent.canceled") {
    return { type: "deposit.payment", status: "canceled", amountReceived: 0n, currency, ...(pi.cancellation_reason ? { reason: String(pi.cancellation_reason).slice(0, 200) } : {}), at };
  }
  const code = pi.last_payment_error?.decline_code ?? pi.last_payment_error?.code;
  return { type: "deposit.payment", status: "failed", amountReceived: 0n, currency, ...(code ? { reason: String(code).slice(0, 200) } : {}), at };
}

/** A charge that was paid and captured, as a payment report (its captured amount is what the PaymentIntent received). */
function chargePayment(charge: Stripe.Charge): Extract<DepositCommand, { type: "deposit.payment" }> | undefined {
  if (charge.status !== "succeeded" || !charge.paid || !charge.captured) return undefined;
  const received = fromStripeAmount(charge.amount_captured);
  if (received === undefined || received === 0n) return undefined;
  return { type: "deposit.payment", status: "succeeded", amountReceived: received, currency: assetOfCurrency(charge.currency), at: now() };
}

/**
 * A dispute's status as Coffer tracks it: won (an inquiry closed without a chargeback counts as
 * won: its money comes back), lost, or else open (created, or closed with a status Coffer does
 * not know: the money stays held back until a word it knows).
 */
function disputeStatusOf(_phase: "created" | "closed", status: string): DisputeStatus {
  if (status === "won" || status === "warning_closed") return "won";
  if (status === "lost") return "lost";
  return "open";
}

function idOf(value: string | { id: string } | null | undefined): string | undefined {
  if (typeof value === "string") return value;
  return value && typeof value.id === "string" ? value.id : undefined;
}

function now(): string {
  return new Date().toISOString();
}
