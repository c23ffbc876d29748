import type Stripe from "stripe";
import { invalidRequest, StripeApiError, stateError } from "./errors";
import { newId, randomToken } from "./ids";
import {
  cardFee,
  DEFAULT_PAYOUT_DESTINATION,
  DISPUTE_FEE,
  isKnownAccount,
  isPayoutDestination,
  MAXIMUM_AMOUNT,
  MINIMUM_AMOUNT,
  PAYOUT_FAILURES,
  payoutFailureFor,
  TEST_CARDS,
  type TestCard,
} from "./magic";
import type { FormValue } from "./form";
import { ZERO_DECIMAL } from "./params";
import type { StandinState } from "./store";

/**
 * What Stripe does when asked: the state transitions of PaymentIntents, charges, refunds,
 * disputes, payouts and transfers, and the events each one emits. Synchronous on purpose: a
 * request's whole effect happens in one turn of the event loop, so two requests never interleave
 * half-way (Stripe serialises writes per object the same way). Deferred effects (a payout settling,
 * a refund that later fails) go through `hooks.schedule`, which the server tracks for `idle()`.
 */

/** The `request` block of an event: which API call caused it (null ids for automatic events). */
export interface RequestInfo {
  id: string | null;
  idempotency_key: string | null;
}

export const AUTOMATIC: RequestInfo = { id: null, idempotency_key: null };

export interface EngineHooks {
  onEvent(event: Stripe.Event): void;
  /** Run `fn` after `ms`, tracked so `idle()` waits for it and `stop()`/`reset()` cancel it. */
  schedule(fn: () => void, ms: number): void;
  webhookConfigured(): boolean;
}

export interface EngineOptions {
  apiVersion: string;
  /** `auto`: payouts settle (paid, or failed by magic destination) after `settleDelayMs`; `manual`: only by the control API. */
  payouts: "auto" | "manual";
  /** Delay before a payout settles and before a `pm_card_refundFail` refund fails; default 100 ms. */
  settleDelayMs: number;
}

type Metadata = Record<string, string>;
type MetadataUpdate = Metadata | "";

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const clone = <T>(v: T): T => structuredClone(v);

export function applyMetadata(current: Metadata | null, update: MetadataUpdate | undefined): Metadata {
  const out: Metadata = { ...(current ?? {}) };
  if (update === undefined) return out;
  if (update === "") return {};
  for (const [k, v] of Object.entries(update)) {
    if (v === "") delete out[k];
    else out[k] = v;
  }
  return out;
}

const SYMBOLS: Record<string, string> = { usd: "$", eur: "€", gbp: "£", jpy: "¥" };

/** How Stripe writes amounts in messages: `$0.50 usd`. */
function formatAmount(amount: number, currency: string): string {
  const symbol = SYMBOLS[currency] ?? "";
  if (ZERO_DECIMAL.has(currency)) return `${symbol}${amount}`;
  return `${symbol}${(amount / 100).toFixed(2)}`;
}

/** Top-level keys whose values changed, with their previous values (for `*.updated` events). */
function previousAttributes(before: object, after: object): Record<string, unknown> | null {
  const prev: Record<string, unknown> = {};
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  for (const key of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (JSON.stringify(b[key]) !== JSON.stringify(a[key])) prev[key] = b[key] ?? null;
  }
  return Object.keys(prev).length === 0 ? null : prev;
}

export interface PaymentIntentCreate {
  amount: number;
  currency: string;
  metadata?: MetadataUpdate;
  description?: string;
  payment_method?: string;
  confirm?: boolean;
  automatic_payment_methods?: { enabled: boolean; allow_redirects?: string };
  payment_method_types?: string[];
  capture_method?: string;
  confirmation_method?: string;
  customer?: string;
  receipt_email?: string;
  statement_descriptor?: string;
  statement_descriptor_suffix?: string;
  setup_future_usage?: string;
  return_url?: string;
  transfer_group?: string;
  transfer_data?: { destination: string; amount?: number };
  on_behalf_of?: string;
  application_fee_amount?: number;
  payment_method_data?: FormValue;
}

export interface PaymentIntentUpdate {
  amount?: number;
  currency?: string;
  metadata?: MetadataUpdate;
  description?: string;
  payment_method?: string;
  receipt_email?: string;
  customer?: string;
  statement_descriptor?: string;
  statement_descriptor_suffix?: string;
  setup_future_usage?: string;
  transfer_group?: string;
  payment_method_types?: string[];
}

export interface PaymentIntentConfirm {
  payment_method?: string;
  return_url?: string;
  receipt_email?: string;
  payment_method_data?: FormValue;
}

export interface RefundCreate {
  payment_intent?: string;
  charge?: string;
  amount?: number;
  reason?: string;
  metadata?: MetadataUpdate;
  instructions_email?: string;
}

export interface PayoutCreate {
  amount: number;
  currency: string;
  destination?: string;
  metadata?: MetadataUpdate;
  description?: string;
  method?: string;
  statement_descriptor?: string;
  source_type?: string;
}

export interface TransferCreate {
  amount: number;
  currency: string;
  destination: string;
  metadata?: MetadataUpdate;
  description?: string;
  transfer_group?: string;
  source_transaction?: string;
}

const RETURN_URL_REQUIRED =
  "This PaymentIntent is configured to accept payment methods enabled in your Dashboard, because automatic_payment_methods is enabled. " +
  "Some of these payment methods may redirect your customer to a different page to complete the payment. To confirm this PaymentIntent, " +
  "you must provide a `return_url` or disable redirect-based payment methods by setting `automatic_payment_methods[allow_redirects]` to `never`.";

const CONFIRMABLE = ["requires_payment_method", "requires_confirmation", "requires_action"];
const CANCELABLE = ["requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"];
const UPDATABLE_AMOUNT = ["requires_payment_method", "requires_confirmation", "requires_action"];

export class Engine {
  /** `return_url` given at creation, kept aside: the PaymentIntent object does not show it. */
  private readonly returnUrls = new Map<string, string>();
  /** Charges paid with `pm_card_refundFail`: their refunds fail later. */
  private readonly refundFailCharges = new Set<string>();

  constructor(
    private readonly state: StandinState,
    private readonly hooks: EngineHooks,
    private readonly options: EngineOptions,
  ) {}

  reset(): void {
    this.returnUrls.clear();
    this.refundFailCharges.clear();
  }

  // ---- events ----------------------------------------------------------------------------------

  emit(type: string, object: object, request: RequestInfo, previous?: Record<string, unknown> | null): Stripe.Event {
    const data: Record<string, unknown> = { object: clone(object) };
    if (previous) data.previous_attributes = clone(previous);
    const event = {
      id: newId("evt"),
      object: "event",
      api_version: this.options.apiVersion,
      created: nowSeconds(),
      data,
      livemode: false,
      pending_webhooks: this.hooks.webhookConfigured() ? 1 : 0,
      request: { ...request },
      type,
    } as unknown as Stripe.Event;
    this.state.events.add(event);
    this.hooks.onEvent(event);
    return event;
  }

  private emitUpdated<T extends object>(type: string, before: T, after: T, request: RequestInfo): void {
    const prev = previousAttributes(before, after);
    if (prev) this.emit(type, after, request, prev);
  }

  // ---- balance transactions --------------------------------------------------------------------

  private balanceTransaction(
    amount: number,
    fee: number,
    currency: string,
    type: string,
    reportingCategory: string,
    source: string,
    description: string | null,
  ): Stripe.BalanceTransaction {
    const created = nowSeconds();
    const txn = {
      id: newId("txn"),
      object: "balance_transaction",
      amount,
      available_on: created,
      balance_type: "payments",
      created,
      currency,
      description,
      exchange_rate: null,
      fee,
      fee_details: fee === 0 ? [] : [{ amount: fee, application: null, currency, description: "Stripe processing fees", type: "stripe_fee" }],
      net: amount - fee,
      reporting_category: reportingCategory,
      source,
      status: "available",
      type,
    } as Stripe.BalanceTransaction;
    return this.state.balanceTransactions.add(txn);
  }

  balance(): Stripe.Balance {
    const byCurrency = new Map<string, number>();
    for (const t of this.state.balanceTransactions.values()) byCurrency.set(t.currency, (byCurrency.get(t.currency) ?? 0) + t.net);
    const currencies = byCurrency.size === 0 ? ["usd"] : [...byCurrency.keys()];
    return {
      object: "balance",
      available: currencies.map((currency) => ({ amount: byCurrency.get(currency) ?? 0, currency, source_types: { card: byCurrency.get(currency) ?? 0 } })),
      livemode: false,
      pending: currencies.map((currency) => ({ amount: 0, currency, source_types: { card: 0 } })),
    };
  }

  // ---- payment intents -------------------------------------------------------------------------

  private checkAmount(amount: number, currency: string): void {
    const min = MINIMUM_AMOUNT[currency] ?? 1;
    if (amount < min) {
      throw invalidRequest(`Amount must be at least ${formatAmount(min, currency)} ${currency}`, { code: "amount_too_small", param: "amount" });
    }
    if (amount > MAXIMUM_AMOUNT) {
      throw invalidRequest(`Amount must be no more than ${formatAmount(MAXIMUM_AMOUNT, currency)} ${currency}`, {
        code: "amount_too_large",
        param: "amount",
      });
    }
  }

  private resolveCard(paymentMethod: string, param = "payment_method"): TestCard {
    const card = TEST_CARDS[paymentMethod];
    if (card) return card;
    const stored = this.state.paymentMethods.get(paymentMethod);
    if (stored) {
      const magic = (stored.metadata ?? {})["standin_test_card"];
      if (magic && TEST_CARDS[magic]) return TEST_CARDS[magic]!;
    }
    throw invalidRequest(`No such PaymentMethod: '${paymentMethod}'`, { code: "resource_missing", param });
  }

  /** Stripe turns `pm_card_visa` into a fresh PaymentMethod (`pm_…`) every time it is used. */
  private materialise(paymentMethod: string, card: TestCard): Stripe.PaymentMethod {
    const existing = this.state.paymentMethods.get(paymentMethod);
    if (existing) return existing;
    const pm = {
      id: newId("pm"),
      object: "payment_method",
      allow_redisplay: "unspecified",
      billing_details: { address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null }, email: null, name: null, phone: null, tax_id: null },
      card: {
        brand: card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "unchecked" },
        country: card.country,
        display_brand: card.brand,
        exp_month: 12,
        exp_year: new Date().getUTCFullYear() + 3,
        fingerprint: `standin${card.last4}`,
        funding: card.funding,
        generated_from: null,
        last4: card.last4,
        networks: { available: [card.brand], preferred: null },
        regulated_status: "unregulated",
        three_d_secure_usage: { supported: true },
        wallet: null,
      },
      created: nowSeconds(),
      customer: null,
      customer_account: null,
      livemode: false,
      metadata: { standin_test_card: paymentMethod },
      type: "card",
    } as unknown as Stripe.PaymentMethod;
    return this.state.paymentMethods.add(pm);
  }

  private assertNoPaymentMethodData(v: FormValue | undefined): void {
    if (v !== undefined) {
      throw invalidRequest("The Stripe stand-in does not support payment_method_data; pass a test PaymentMethod such as payment_method=pm_card_visa.", {
        param: "payment_method_data",
      });
    }
  }

  createPaymentIntent(p: PaymentIntentCreate, req: RequestInfo): Stripe.PaymentIntent {
    this.checkAmount(p.amount, p.currency);
    this.assertNoPaymentMethodData(p.payment_method_data);
    if (p.capture_method === "manual") {
      throw invalidRequest("The Stripe stand-in does not support capture_method=manual (separate authorisation and capture).", { param: "capture_method" });
    }
    if (p.automatic_payment_methods && p.payment_method_types) {
      throw invalidRequest("You may only specify one of these parameters: automatic_payment_methods, payment_method_types.", {
        code: "parameters_exclusive",
        param: "automatic_payment_methods",
      });
    }
    if (p.payment_method !== undefined) this.resolveCard(p.payment_method);
    // Since API version 2023-08-16 automatic payment methods are on unless payment_method_types is given.
    const automatic = p.payment_method_types
      ? null
      : { enabled: p.automatic_payment_methods?.enabled ?? true, allow_redirects: (p.automatic_payment_methods?.allow_redirects ?? "always") as "always" | "never" };
    if (p.confirm) {
      if (p.payment_method === undefined) {
        throw invalidRequest(
          "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
          { code: "payment_intent_unexpected_state", param: "payment_method" },
        );
      }
      if (automatic?.enabled && automatic.allow_redirects !== "never" && !p.return_url) {
        throw invalidRequest(RETURN_URL_REQUIRED, { param: "return_url" });
      }
    }
    const id = newId("pi");
    const pi = {
      id,
      object: "payment_intent",
      allowed_payment_method_types: null,
      amount: p.amount,
      amount_capturable: 0,
      amount_details: { tip: {} },
      amount_received: 0,
      application: null,
      application_fee_amount: p.application_fee_amount ?? null,
      automatic_payment_methods: automatic,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: (p.capture_method ?? "automatic_async") as Stripe.PaymentIntent.CaptureMethod,
      client_secret: `${id}_secret_${randomToken(25)}`,
      confirmation_method: (p.confirmation_method ?? "automatic") as Stripe.PaymentIntent.ConfirmationMethod,
      created: nowSeconds(),
      currency: p.currency,
      customer: p.customer ?? null,
      customer_account: null,
      description: p.description || null,
      excluded_payment_method_types: null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      managed_payments: null,
      metadata: applyMetadata({}, p.metadata),
      next_action: null,
      on_behalf_of: p.on_behalf_of ?? null,
      payment_method: null,
      payment_method_configuration_details: automatic ? { id: "pmc_standin", parent: null } : null,
      payment_method_options: { card: { installments: null, mandate_options: null, network: null, request_three_d_secure: "automatic" } },
      payment_method_types: p.payment_method_types ?? ["card"],
      payment_record: null,
      processing: null,
      receipt_email: p.receipt_email || null,
      review: null,
      setup_future_usage: (p.setup_future_usage ?? null) as Stripe.PaymentIntent.SetupFutureUsage | null,
      shipping: null,
      source: null,
      statement_descriptor: p.statement_descriptor || null,
      statement_descriptor_suffix: p.statement_descriptor_suffix || null,
      status: p.payment_method ? "requires_confirmation" : "requires_payment_method",
      transfer_data: p.transfer_data ? { amount: p.transfer_data.amount ?? undefined, destination: p.transfer_data.destination } : null,
      transfer_group: p.transfer_group ?? null,
    } as unknown as Stripe.PaymentIntent;
    if (p.payment_method !== undefined) pi.payment_method = this.materialise(p.payment_method, this.resolveCard(p.payment_method)).id;
    if (p.return_url) this.returnUrls.set(id, p.return_url);
    this.state.paymentIntents.add(pi);
    this.emit("payment_intent.created", pi, req);
    if (p.confirm) return this.runConfirmation(pi, req);
    return pi;
  }

  updatePaymentIntent(id: string, p: PaymentIntentUpdate): Stripe.PaymentIntent {
    const pi = this.state.paymentIntents.require(id, "intent");
    const restricted: (keyof PaymentIntentUpdate)[] = ["amount", "currency", "payment_method", "payment_method_types", "setup_future_usage", "customer"];
    for (const key of restricted) {
      if (p[key] !== undefined && !UPDATABLE_AMOUNT.includes(pi.status)) {
        throw stateError(
          `You cannot update ${key} on this PaymentIntent because it has a status of ${pi.status}. Updates to ${key} are only allowed when the PaymentIntent has a status of ${UPDATABLE_AMOUNT.join(", ")}.`,
          "payment_intent_unexpected_state",
          key,
        );
      }
    }
    if (p.amount !== undefined || p.currency !== undefined) this.checkAmount(p.amount ?? pi.amount, p.currency ?? pi.currency);
    if (p.amount !== undefined) pi.amount = p.amount;
    if (p.currency !== undefined) pi.currency = p.currency;
    if (p.metadata !== undefined) pi.metadata = applyMetadata(pi.metadata, p.metadata);
    if (p.description !== undefined) pi.description = p.description || null;
    if (p.receipt_email !== undefined) pi.receipt_email = p.receipt_email || null;
    if (p.customer !== undefined) pi.customer = p.customer || null;
    if (p.statement_descriptor !== undefined) pi.statement_descriptor = p.statement_descriptor || null;
    if (p.statement_descriptor_suffix !== undefined) pi.statement_descriptor_suffix = p.statement_descriptor_suffix || null;
    if (p.transfer_group !== undefined) pi.transfer_group = p.transfer_group || null;
    if (p.payment_method_types !== undefined) pi.payment_method_types = p.payment_method_types;
    if (p.payment_method !== undefined) {
      if (p.payment_method === "") {
        pi.payment_method = null;
        pi.status = "requires_payment_method";
      } else {
        pi.payment_method = this.materialise(p.payment_method, this.resolveCard(p.payment_method)).id;
        pi.status = "requires_confirmation";
      }
    }
    return pi;
  }

  confirmPaymentIntent(id: string, p: PaymentIntentConfirm, req: RequestInfo): Stripe.PaymentIntent {
    const pi = this.state.paymentIntents.require(id, "intent");
    this.assertNoPaymentMethodData(p.payment_method_data);
    if (pi.status === "succeeded") {
      throw stateError("You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.", "payment_intent_unexpected_state");
    }
    if (!CONFIRMABLE.includes(pi.status)) {
      throw stateError(
        `You cannot confirm this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be confirmed: ${CONFIRMABLE.join(", ")}.`,
        "payment_intent_unexpected_state",
      );
    }
    const paymentMethod = p.payment_method ?? (typeof pi.payment_method === "string" ? pi.payment_method : undefined);
    if (paymentMethod === undefined) {
      throw invalidRequest(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
        { code: "payment_intent_unexpected_state", param: "payment_method" },
      );
    }
    const card = this.resolveCard(paymentMethod);
    const returnUrl = p.return_url ?? this.returnUrls.get(pi.id);
    const apm = pi.automatic_payment_methods;
    if (apm?.enabled && apm.allow_redirects !== "never" && !returnUrl) throw invalidRequest(RETURN_URL_REQUIRED, { param: "return_url" });
    if (p.return_url) this.returnUrls.set(pi.id, p.return_url);
    if (p.receipt_email !== undefined) pi.receipt_email = p.receipt_email || null;
    pi.payment_method = this.materialise(paymentMethod, card).id;
    return this.runConfirmation(pi, req);
  }

  private runConfirmation(pi: Stripe.PaymentIntent, req: RequestInfo): Stripe.PaymentIntent {
    const pmId = pi.payment_method as string;
    const pm = this.state.paymentMethods.require(pmId, "payment_method");
    const magic = (pm.metadata ?? {})["standin_test_card"] ?? "";
    const card = TEST_CARDS[magic]!;
    const charge = this.makeCharge(pi, pm, card);
    pi.latest_charge = charge.id;
    if (card.decline) {
      const lastError = {
        charge: charge.id,
        code: card.decline.code,
        decline_code: card.decline.decline_code,
        doc_url: `https://stripe.com/docs/error-codes/${card.decline.code.replaceAll("_", "-")}`,
        message: card.decline.message,
        payment_method: clone(pm),
        type: "card_error",
      } as Stripe.PaymentIntent.LastPaymentError;
      pi.status = "requires_payment_method";
      pi.payment_method = null;
      pi.last_payment_error = lastError;
      this.emit("charge.failed", charge, req);
      this.emit("payment_intent.payment_failed", pi, req);
      throw new StripeApiError(
        402,
        {
          type: "card_error",
          code: card.decline.code,
          decline_code: card.decline.decline_code,
          doc_url: lastError.doc_url,
          message: card.decline.message,
          charge: charge.id,
          payment_intent: clone(pi),
          payment_method: clone(pm),
          request_log_url: req.id ? `https://dashboard.stripe.com/test/logs/${req.id}` : undefined,
        },
        true,
      );
    }
    pi.status = "succeeded";
    pi.amount_received = pi.amount;
    pi.last_payment_error = null;
    this.emit("charge.succeeded", charge, req);
    this.emit("payment_intent.succeeded", pi, req);
    if (card.refundFails) this.refundFailCharges.add(charge.id);
    if (card.dispute) this.openDispute(charge.id, { reason: card.dispute.reason, inquiry: card.dispute.inquiry });
    return pi;
  }

  private makeCharge(pi: Stripe.PaymentIntent, pm: Stripe.PaymentMethod, card: TestCard): Stripe.Charge {
    const id = newId("ch");
    const failed = card.decline !== undefined;
    const txn = failed
      ? null
      : this.balanceTransaction(pi.amount, cardFee(pi.amount), pi.currency, "charge", "charge", id, pi.description);
    const charge = {
      id,
      object: "charge",
      amount: pi.amount,
      amount_captured: failed ? 0 : pi.amount,
      amount_refunded: 0,
      application: null,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: txn?.id ?? null,
      billing_details: { address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null }, email: null, name: null, phone: null, tax_id: null },
      calculated_statement_descriptor: "STRIPE STAND-IN",
      captured: !failed,
      created: nowSeconds(),
      currency: pi.currency,
      customer: pi.customer,
      description: pi.description,
      disputed: false,
      failure_balance_transaction: null,
      failure_code: card.decline?.code ?? null,
      failure_message: card.decline?.message ?? null,
      fraud_details: {},
      livemode: false,
      metadata: { ...pi.metadata },
      on_behalf_of: null,
      outcome: failed
        ? {
            advice_code: null,
            network_advice_code: null,
            network_decline_code: null,
            network_status: "declined_by_network",
            reason: card.decline!.decline_code,
            risk_level: "normal",
            risk_score: 20,
            seller_message: "The bank did not return any further details with this decline.",
            type: "issuer_declined",
          }
        : {
            advice_code: null,
            network_advice_code: null,
            network_decline_code: null,
            network_status: "approved_by_network",
            reason: null,
            risk_level: "normal",
            risk_score: 20,
            seller_message: "Payment complete.",
            type: "authorized",
          },
      paid: !failed,
      payment_intent: pi.id,
      payment_method: pm.id,
      payment_method_details: {
        type: "card",
        card: {
          amount_authorized: failed ? null : pi.amount,
          authorization_code: failed ? null : randomToken(6).toUpperCase(),
          brand: card.brand,
          checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "pass" },
          country: card.country,
          electronic_commerce_indicator: null,
          exp_month: pm.card?.exp_month ?? 12,
          exp_year: pm.card?.exp_year ?? 2030,
          fingerprint: pm.card?.fingerprint ?? null,
          funding: card.funding,
          installments: null,
          last4: card.last4,
          mandate: null,
          network: card.brand,
          network_token: { used: false },
          network_transaction_id: failed ? null : randomToken(15),
          regulated_status: "unregulated",
          three_d_secure: null,
          transaction_link_id: null,
          wallet: null,
        },
      },
      receipt_email: pi.receipt_email,
      receipt_number: null,
      receipt_url: failed ? null : `https://pay.stripe.com/receipts/payment/standin_${id}`,
      refunded: false,
      review: null,
      shipping: null,
      source: null,
      source_transfer: null,
      statement_descriptor: pi.statement_descriptor,
      statement_descriptor_suffix: pi.statement_descriptor_suffix,
      status: failed ? "failed" : "succeeded",
      transfer_data: null,
      transfer_group: pi.transfer_group,
    } as unknown as Stripe.Charge;
    return this.state.charges.add(charge);
  }

  cancelPaymentIntent(id: string, reason: string | undefined, req: RequestInfo): Stripe.PaymentIntent {
    const pi = this.state.paymentIntents.require(id, "intent");
    if (!CANCELABLE.includes(pi.status)) {
      throw stateError(
        `You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELABLE.join(", ")}.`,
        "payment_intent_unexpected_state",
      );
    }
    pi.status = "canceled";
    pi.canceled_at = nowSeconds();
    pi.cancellation_reason = (reason ?? null) as Stripe.PaymentIntent.CancellationReason | null;
    this.emit("payment_intent.canceled", pi, req);
    return pi;
  }

  // ---- charges ---------------------------------------------------------------------------------

  updateCharge(id: string, p: { metadata?: MetadataUpdate; description?: string; receipt_email?: string }, req: RequestInfo): Stripe.Charge {
    const charge = this.state.charges.require(id);
    const before = clone(charge);
    if (p.metadata !== undefined) charge.metadata = applyMetadata(charge.metadata, p.metadata);
    if (p.description !== undefined) charge.description = p.description || null;
    if (p.receipt_email !== undefined) charge.receipt_email = p.receipt_email || null;
    this.emitUpdated("charge.updated", before, charge, req);
    return charge;
  }

  // ---- refunds ---------------------------------------------------------------------------------

  private refundableCharge(p: RefundCreate): Stripe.Charge {
    if (p.charge === undefined && p.payment_intent === undefined) {
      throw invalidRequest("One of the following params should be provided for this request: payment_intent or charge.", {
        code: "parameter_missing",
        param: "payment_intent",
      });
    }
    let charge: Stripe.Charge | undefined;
    if (p.payment_intent !== undefined) {
      const pi = this.state.paymentIntents.get(p.payment_intent);
      if (!pi) throw invalidRequest(`No such payment_intent: '${p.payment_intent}'`, { code: "resource_missing", param: "payment_intent" });
      const latest = typeof pi.latest_charge === "string" ? this.state.charges.get(pi.latest_charge) : undefined;
      if (pi.status !== "succeeded" || !latest || latest.status !== "succeeded") {
        throw stateError(
          `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`,
          "charge_not_refundable",
          "payment_intent",
        );
      }
      charge = latest;
      if (p.charge !== undefined && p.charge !== charge.id) {
        throw invalidRequest(`The charge ${p.charge} does not belong to the PaymentIntent ${pi.id}.`, { param: "charge" });
      }
    } else {
      charge = this.state.charges.get(p.charge!);
      if (!charge) throw invalidRequest(`No such charge: '${p.charge}'`, { code: "resource_missing", param: "charge" });
      if (charge.status !== "succeeded") throw stateError(`Charge ${charge.id} has not succeeded and cannot be refunded.`, "charge_not_refundable", "charge");
    }
    return charge;
  }

  createRefund(p: RefundCreate, req: RequestInfo): Stripe.Refund {
    const charge = this.refundableCharge(p);
    if (charge.disputed) {
      const dispute = this.state.disputes.values().find((d) => d.charge === charge.id);
      const inquiry = dispute?.status.startsWith("warning_") ?? false;
      if (!inquiry) throw stateError(`Charge ${charge.id} has been charged back; cannot issue a refund.`, "charge_disputed", "charge");
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) throw stateError(`Charge ${charge.id} has already been refunded.`, "charge_already_refunded", "charge");
    const amount = p.amount ?? remaining;
    if (amount > remaining) {
      throw stateError(
        `Refund amount (${formatAmount(amount, charge.currency)} ${charge.currency}) is greater than unrefunded amount on charge (${formatAmount(remaining, charge.currency)} ${charge.currency})`,
        "amount_too_large",
        "amount",
      );
    }
    const id = newId("re");
    const txn = this.balanceTransaction(-amount, 0, charge.currency, "refund", "refund", id, "REFUND FOR CHARGE");
    const refund = {
      id,
      object: "refund",
      amount,
      balance_transaction: txn.id,
      charge: charge.id,
      created: nowSeconds(),
      currency: charge.currency,
      customer: null,
      customer_account: null,
      destination_details: { card: { reference: `standin${randomToken(10)}`, reference_status: "available", reference_type: "acquirer_reference_number", type: "refund" }, type: "card" },
      metadata: applyMetadata({}, p.metadata),
      payment_intent: typeof charge.payment_intent === "string" ? charge.payment_intent : null,
      payment_method: charge.payment_method,
      reason: (p.reason ?? null) as Stripe.Refund.Reason | null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: "succeeded",
      transfer_reversal: null,
    } as unknown as Stripe.Refund;
    if (p.instructions_email) refund.instructions_email = p.instructions_email;
    this.state.refunds.add(refund);
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    this.emit("refund.created", refund, req);
    this.emit("charge.refunded", charge, req);
    if (this.refundFailCharges.has(charge.id)) {
      this.hooks.schedule(() => {
        if (this.state.refunds.get(id)?.status === "succeeded") this.failRefund(id, "expired_or_canceled_card");
      }, this.options.settleDelayMs);
    }
    return refund;
  }

  updateRefund(id: string, p: { metadata?: MetadataUpdate }, req: RequestInfo): Stripe.Refund {
    const refund = this.state.refunds.require(id);
    const before = clone(refund);
    refund.metadata = applyMetadata(refund.metadata, p.metadata);
    const prev = previousAttributes(before, refund);
    if (prev) {
      this.emit("refund.updated", refund, req, prev);
      this.emit("charge.refund.updated", refund, req, prev);
    }
    return refund;
  }

  /** A refund that Stripe reported `succeeded` (or `pending`) turns `failed`; the charge gets the amount back. */
  failRefund(id: string, failureReason = "unknown", req: RequestInfo = AUTOMATIC): Stripe.Refund {
    const refund = this.state.refunds.require(id);
    if (refund.status !== "succeeded" && refund.status !== "pending") {
      throw stateError(`Refund ${id} has status ${refund.status}; only a succeeded or pending refund can fail.`, "refund_unexpected_state");
    }
    const before = clone(refund);
    const charge = this.state.charges.get(refund.charge as string);
    const txn = this.balanceTransaction(refund.amount, 0, refund.currency, "refund_failure", "refund_failure", id, "REFUND FAILURE");
    refund.status = "failed";
    refund.failure_reason = failureReason;
    refund.failure_balance_transaction = txn.id;
    if (charge) {
      charge.amount_refunded = Math.max(0, charge.amount_refunded - refund.amount);
      charge.refunded = charge.amount_refunded === charge.amount;
    }
    const prev = previousAttributes(before, refund);
    this.emit("refund.updated", refund, req, prev);
    this.emit("charge.refund.updated", refund, req, prev);
    this.emit("refund.failed", refund, req);
    return refund;
  }

  // ---- disputes --------------------------------------------------------------------------------

  /** Open a dispute on a succeeded charge (the dispute test cards do this by themselves). */
  openDispute(chargeId: string, opts: { reason?: string; inquiry?: boolean; amount?: number } = {}): Stripe.Dispute {
    const charge = this.state.charges.require(chargeId);
    if (charge.status !== "succeeded") throw stateError(`Charge ${chargeId} has not succeeded; it cannot be disputed.`, "charge_not_disputable");
    if (charge.disputed) throw stateError(`Charge ${chargeId} is already disputed.`, "charge_disputed");
    const inquiry = opts.inquiry ?? false;
    const amount = opts.amount ?? charge.amount;
    const id = newId("dp");
    const withdrawals = inquiry
      ? []
      : [this.balanceTransaction(-amount, DISPUTE_FEE, charge.currency, "adjustment", "dispute", id, `Chargeback withdrawal for ${charge.id}`)];
    const created = nowSeconds();
    const dispute = {
      id,
      object: "dispute",
      amount,
      balance_transactions: withdrawals.map(clone),
      charge: charge.id,
      created,
      currency: charge.currency,
      enhanced_eligibility_types: [],
      evidence: {
        access_activity_log: null, billing_address: null, cancellation_policy: null, cancellation_policy_disclosure: null,
        cancellation_rebuttal: null, customer_communication: null, customer_email_address: null, customer_name: null,
        customer_purchase_ip: null, customer_signature: null, duplicate_charge_documentation: null, duplicate_charge_explanation: null,
        duplicate_charge_id: null, product_description: null, receipt: null, refund_policy: null, refund_policy_disclosure: null,
        refund_refusal_explanation: null, service_date: null, service_documentation: null, shipping_address: null,
        shipping_carrier: null, shipping_date: null, shipping_documentation: null, shipping_tracking_number: null,
        uncategorized_file: null, uncategorized_text: null, enhanced_evidence: {},
      },
      evidence_details: { due_by: created + 7 * 24 * 3600, enhanced_eligibility: {}, has_evidence: false, past_due: false, submission_count: 0, submission_method: "not_submitted" },
      intended_submission_method: null,
      is_charge_refundable: inquiry,
      livemode: false,
      metadata: {},
      payment_intent: typeof charge.payment_intent === "string" ? charge.payment_intent : null,
      payment_method_details: { card: { brand: (charge.payment_method_details?.card?.brand ?? "visa"), case_type: inquiry ? "inquiry" : "chargeback", network: charge.payment_method_details?.card?.network ?? "visa", network_reason_code: "10.4" }, type: "card" },
      reason: opts.reason ?? "fraudulent",
      status: inquiry ? "warning_needs_response" : "needs_response",
    } as unknown as Stripe.Dispute;
    this.state.disputes.add(dispute);
    charge.disputed = true;
    this.emit("charge.dispute.created", dispute, AUTOMATIC);
    if (!inquiry) this.emit("charge.dispute.funds_withdrawn", dispute, AUTOMATIC);
    return dispute;
  }

  private assertDisputeOpen(dispute: Stripe.Dispute): void {
    if (["won", "lost", "warning_closed", "prevented"].includes(dispute.status)) {
      throw stateError(`This dispute (${dispute.id}) is already closed with status ${dispute.status}.`, "dispute_already_closed");
    }
  }

  updateDispute(id: string, p: { metadata?: MetadataUpdate; evidence?: FormValue; submit?: boolean }, req: RequestInfo): Stripe.Dispute {
    const dispute = this.state.disputes.require(id, "dispute");
    this.assertDisputeOpen(dispute);
    const before = clone(dispute);
    if (p.metadata !== undefined) dispute.metadata = applyMetadata(dispute.metadata, p.metadata);
    if (p.evidence !== undefined && typeof p.evidence === "object" && !Array.isArray(p.evidence)) {
      const evidence = dispute.evidence as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(p.evidence)) {
        if (!(k in evidence)) throw invalidRequest(`Received unknown parameter: evidence[${k}]`, { code: "parameter_unknown", param: `evidence[${k}]` });
        evidence[k] = typeof v === "string" && v !== "" ? v : null;
      }
      dispute.evidence_details.has_evidence = true;
    }
    if (p.submit) {
      dispute.status = dispute.status.startsWith("warning_") ? "warning_under_review" : "under_review";
      dispute.evidence_details.submission_count += 1;
      dispute.evidence_details.has_evidence = true;
      dispute.evidence_details.submission_method = "manual";
    }
    this.emitUpdated("charge.dispute.updated", before, dispute, req);
    return dispute;
  }

  /** `POST /v1/disputes/:id/close`: the merchant accepts the dispute, so it is lost. */
  acceptDispute(id: string, req: RequestInfo): Stripe.Dispute {
    const dispute = this.state.disputes.require(id, "dispute");
    return this.resolveDispute(id, dispute.status.startsWith("warning_") ? "warning_closed" : "lost", req);
  }

  /** The card network's decision (test control): `won` gives the money back, `lost` keeps it gone. */
  resolveDispute(id: string, status: "won" | "lost" | "warning_closed", req: RequestInfo = AUTOMATIC): Stripe.Dispute {
    const dispute = this.state.disputes.require(id, "dispute");
    this.assertDisputeOpen(dispute);
    const inquiry = dispute.status.startsWith("warning_");
    if (status === "won" && !inquiry) {
      const txn = this.balanceTransaction(dispute.amount, -DISPUTE_FEE, dispute.currency, "adjustment", "dispute_reversal", id, `Chargeback reversal for ${dispute.charge}`);
      dispute.balance_transactions.push(clone(txn));
      dispute.status = "won";
      this.emit("charge.dispute.funds_reinstated", dispute, req);
    } else {
      dispute.status = inquiry ? "warning_closed" : status === "won" ? "won" : "lost";
    }
    this.emit("charge.dispute.closed", dispute, req);
    return dispute;
  }

  // ---- payouts ---------------------------------------------------------------------------------

  createPayout(p: PayoutCreate, req: RequestInfo): Stripe.Payout {
    const destination = p.destination ?? DEFAULT_PAYOUT_DESTINATION;
    if (!isPayoutDestination(destination)) {
      throw invalidRequest(`No such external account: '${destination}'`, { code: "resource_missing", param: "destination" });
    }
    const id = newId("po");
    const txn = this.balanceTransaction(-p.amount, 0, p.currency, "payout", "payout", id, p.description ?? "STRIPE PAYOUT");
    const created = nowSeconds();
    const payout = {
      id,
      object: "payout",
      amount: p.amount,
      application_fee: null,
      application_fee_amount: null,
      arrival_date: created + 2 * 24 * 3600,
      automatic: false,
      balance_transaction: txn.id,
      created,
      currency: p.currency,
      description: p.description ?? null,
      destination,
      failure_balance_transaction: null,
      failure_code: null,
      failure_message: null,
      livemode: false,
      metadata: applyMetadata({}, p.metadata),
      method: p.method ?? "standard",
      original_payout: null,
      payout_method: null,
      reconciliation_status: "not_applicable",
      reversed_by: null,
      source_type: p.source_type ?? "card",
      statement_descriptor: p.statement_descriptor ?? null,
      status: "pending",
      trace_id: { status: "pending", value: null },
      type: destination.startsWith("card_") ? "card" : "bank_account",
    } as unknown as Stripe.Payout;
    this.state.payouts.add(payout);
    this.emit("payout.created", payout, req);
    if (this.options.payouts === "auto") {
      this.hooks.schedule(() => {
        if (this.state.payouts.get(id)?.status !== "pending") return;
        const failure = payoutFailureFor(destination);
        if (failure) this.failPayout(id, failure.code, failure.message);
        else this.payPayout(id);
      }, this.options.settleDelayMs);
    }
    return payout;
  }

  payPayout(id: string, req: RequestInfo = AUTOMATIC): Stripe.Payout {
    const payout = this.state.payouts.require(id, "payout");
    if (payout.status !== "pending" && payout.status !== "in_transit") {
      throw stateError(`Payout ${id} has status ${payout.status}; only a pending payout can be paid.`, "payout_unexpected_state");
    }
    const before = clone(payout);
    payout.status = "paid";
    payout.trace_id = { status: "supported", value: `STANDIN${randomToken(12).toUpperCase()}` };
    this.emitUpdated("payout.updated", before, payout, req);
    this.emit("payout.paid", payout, req);
    return payout;
  }

  /** A payout fails: from `pending`, or later from `paid` (banks return payouts days after, and Stripe reports it the same way). */
  failPayout(id: string, code?: string, message?: string, req: RequestInfo = AUTOMATIC): Stripe.Payout {
    const payout = this.state.payouts.require(id, "payout");
    if (payout.status !== "pending" && payout.status !== "in_transit" && payout.status !== "paid") {
      throw stateError(`Payout ${id} has status ${payout.status}; it cannot fail.`, "payout_unexpected_state");
    }
    const failure = (code ? PAYOUT_FAILURES.find((f) => f.failure.code === code)?.failure : undefined) ?? payoutFailureFor(payout.destination as string);
    const failureCode = code ?? failure?.code ?? "could_not_process";
    const before = clone(payout);
    const txn = this.balanceTransaction(payout.amount, 0, payout.currency, "payout_failure", "payout_reversal", id, "PAYOUT FAILURE");
    payout.status = "failed";
    payout.failure_code = failureCode;
    payout.failure_message = message ?? failure?.message ?? "The bank could not process this payout.";
    payout.failure_balance_transaction = txn.id;
    payout.trace_id = { status: "unsupported", value: null };
    this.emitUpdated("payout.updated", before, payout, req);
    this.emit("payout.failed", payout, req);
    return payout;
  }

  cancelPayout(id: string, req: RequestInfo): Stripe.Payout {
    const payout = this.state.payouts.require(id, "payout");
    if (payout.status !== "pending") {
      throw stateError(`Payout ${id} cannot be canceled because it has a status of ${payout.status}.`, "payout_not_cancelable");
    }
    const before = clone(payout);
    this.balanceTransaction(payout.amount, 0, payout.currency, "payout_cancel", "payout_reversal", id, "PAYOUT CANCEL");
    payout.status = "canceled";
    this.emitUpdated("payout.updated", before, payout, req);
    this.emit("payout.canceled", payout, req);
    return payout;
  }

  updatePayout(id: string, p: { metadata?: MetadataUpdate }, req: RequestInfo): Stripe.Payout {
    const payout = this.state.payouts.require(id, "payout");
    const before = clone(payout);
    payout.metadata = applyMetadata(payout.metadata, p.metadata);
    this.emitUpdated("payout.updated", before, payout, req);
    return payout;
  }

  // ---- transfers (Connect) ---------------------------------------------------------------------

  createTransfer(p: TransferCreate, req: RequestInfo): Stripe.Transfer {
    if (!isKnownAccount(p.destination)) {
      throw invalidRequest(`No such destination: '${p.destination}'`, { code: "resource_missing", param: "destination" });
    }
    if (p.source_transaction !== undefined && !this.state.charges.get(p.source_transaction)) {
      throw invalidRequest(`No such charge: '${p.source_transaction}'`, { code: "resource_missing", param: "source_transaction" });
    }
    const id = newId("tr");
    const txn = this.balanceTransaction(-p.amount, 0, p.currency, "transfer", "transfer", id, p.description ?? null);
    const transfer = {
      id,
      object: "transfer",
      amount: p.amount,
      amount_reversed: 0,
      balance_transaction: txn.id,
      created: nowSeconds(),
      currency: p.currency,
      description: p.description ?? null,
      destination: p.destination,
      destination_payment: newId("py"),
      livemode: false,
      metadata: applyMetadata({}, p.metadata),
      reversals: { object: "list", data: [], has_more: false, url: `/v1/transfers/${id}/reversals` },
      reversed: false,
      source_transaction: p.source_transaction ?? null,
      source_type: "card",
      transfer_group: p.transfer_group ?? null,
    } as unknown as Stripe.Transfer;
    this.state.transfers.add(transfer);
    this.emit("transfer.created", transfer, req);
    return transfer;
  }

  updateTransfer(id: string, p: { metadata?: MetadataUpdate; description?: string }, req: RequestInfo): Stripe.Transfer {
    const transfer = this.state.transfers.require(id, "transfer");
    const before = clone(transfer);
    if (p.metadata !== undefined) transfer.metadata = applyMetadata(transfer.metadata, p.metadata);
    if (p.description !== undefined) transfer.description = p.description || null;
    this.emitUpdated("transfer.updated", before, transfer, req);
    return transfer;
  }
}

