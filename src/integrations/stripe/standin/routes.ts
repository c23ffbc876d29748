import type Stripe from "stripe";
import type { Engine, RequestInfo } from "./engine";
import { invalidRequest } from "./errors";
import type { FormObject } from "./form";
import { LIST_SPEC, readParams, type Spec } from "./params";
import type { StandinState } from "./store";

/**
 * The `/v1` endpoints the stand-in answers, each with the parameters it accepts. Anything else
 * under `/v1` is Stripe's 404 "Unrecognized request URL".
 */

export interface ApiContext {
  ids: string[];
  raw: FormObject;
  req: RequestInfo;
  engine: Engine;
  state: StandinState;
}

export interface ApiResult {
  status?: number;
  body: object;
}

export interface Route {
  method: "GET" | "POST" | "DELETE";
  pattern: RegExp;
  handler: (ctx: ApiContext) => ApiResult;
}

const clone = <T>(v: T): T => structuredClone(v);
const ID = "([A-Za-z0-9_]+)";
const MAX_EXPAND_DEPTH = 4;

/** A deep copy of `obj` with the `expand[]` paths replaced by the objects their ids name. */
export function render(obj: object, expand: string[] | undefined, state: StandinState): object {
  const out = clone(obj) as Record<string, unknown>;
  for (const path of expand ?? []) {
    const segments = path.split(".");
    if (segments.length > MAX_EXPAND_DEPTH) {
      throw invalidRequest(`You cannot expand more than ${MAX_EXPAND_DEPTH} levels of a property. Property: ${path}`, { param: "expand" });
    }
    expandAt(out, segments, path, state);
  }
  return out;
}

function expandAt(node: unknown, segments: string[], full: string, state: StandinState): void {
  if (Array.isArray(node)) {
    for (const item of node) expandAt(item, segments, full, state);
    return;
  }
  if (!node || typeof node !== "object") return;
  const rec = node as Record<string, unknown>;
  const [head, ...rest] = segments as [string, ...string[]];
  if (head === "refunds" && rec.object === "charge") {
    const refunds = state.refunds
      .values()
      .filter((r) => r.charge === rec.id)
      .reverse();
    rec.refunds = { object: "list", data: refunds.map(clone), has_more: false, url: `/v1/charges/${rec.id}/refunds` };
  } else {
    if (!(head in rec)) throw invalidRequest(`This property cannot be expanded (${full}).`, { param: "expand" });
    const value = rec[head];
    if (typeof value === "string") {
      const found = state.lookup(value);
      if (found) rec[head] = clone(found);
    } else if (value !== null && typeof value !== "object") {
      throw invalidRequest(`This property cannot be expanded (${full}).`, { param: "expand" });
    }
  }
  if (rest.length > 0) expandAt(rec[head], rest, full, state);
}

// ---- parameter specs -----------------------------------------------------------------------------

const OPAQUE = { t: "opaque" } as const;

const PI_CREATE = {
  amount: { t: "int", required: true, min: 1 },
  currency: { t: "currency", required: true },
  metadata: { t: "metadata" },
  description: { t: "string", maxLength: 1000 },
  payment_method: { t: "string" },
  confirm: { t: "bool" },
  automatic_payment_methods: {
    t: "object",
    fields: { enabled: { t: "bool", required: true }, allow_redirects: { t: "enum", values: ["always", "never"] } },
  },
  payment_method_types: { t: "strings" },
  excluded_payment_method_types: { t: "strings" },
  capture_method: { t: "enum", values: ["automatic", "automatic_async", "manual"] },
  confirmation_method: { t: "enum", values: ["automatic", "manual"] },
  customer: { t: "string" },
  receipt_email: { t: "string" },
  statement_descriptor: { t: "string", maxLength: 22 },
  statement_descriptor_suffix: { t: "string", maxLength: 22 },
  setup_future_usage: { t: "enum", values: ["on_session", "off_session"] },
  return_url: { t: "string" },
  off_session: OPAQUE,
  error_on_requires_action: { t: "bool" },
  use_stripe_sdk: { t: "bool" },
  transfer_data: { t: "object", fields: { destination: { t: "string", required: true }, amount: { t: "int", min: 1 } } },
  transfer_group: { t: "string" },
  on_behalf_of: { t: "string" },
  application_fee_amount: { t: "int", min: 0 },
  payment_method_options: OPAQUE,
  payment_method_configuration: { t: "string" },
  payment_method_data: OPAQUE,
  shipping: OPAQUE,
  mandate_data: OPAQUE,
  radar_options: OPAQUE,
  amount_details: OPAQUE,
  payment_details: OPAQUE,
  hooks: OPAQUE,
} as const satisfies Spec;

const PI_UPDATE = {
  amount: { t: "int", min: 1 },
  currency: { t: "currency" },
  metadata: { t: "metadata" },
  description: { t: "string", maxLength: 1000 },
  payment_method: { t: "string" },
  payment_method_types: { t: "strings" },
  customer: { t: "string" },
  receipt_email: { t: "string" },
  statement_descriptor: { t: "string", maxLength: 22 },
  statement_descriptor_suffix: { t: "string", maxLength: 22 },
  setup_future_usage: { t: "enum", values: ["on_session", "off_session", ""] },
  transfer_group: { t: "string" },
  payment_method_options: OPAQUE,
  shipping: OPAQUE,
} as const satisfies Spec;

const PI_CONFIRM = {
  payment_method: { t: "string" },
  return_url: { t: "string" },
  receipt_email: { t: "string" },
  off_session: OPAQUE,
  error_on_requires_action: { t: "bool" },
  use_stripe_sdk: { t: "bool" },
  capture_method: { t: "enum", values: ["automatic", "automatic_async"] },
  setup_future_usage: { t: "enum", values: ["on_session", "off_session", ""] },
  payment_method_options: OPAQUE,
  payment_method_types: { t: "strings" },
  payment_method_data: OPAQUE,
  mandate_data: OPAQUE,
  shipping: OPAQUE,
  radar_options: OPAQUE,
  client_secret: { t: "string" },
} as const satisfies Spec;

const PI_CANCEL = {
  cancellation_reason: { t: "enum", values: ["duplicate", "fraudulent", "requested_by_customer", "abandoned"] },
} as const satisfies Spec;

const RETRIEVE = { client_secret: { t: "string" } } as const satisfies Spec;

const REFUND_CREATE = {
  payment_intent: { t: "string" },
  charge: { t: "string" },
  amount: { t: "int", min: 1 },
  reason: { t: "enum", values: ["duplicate", "fraudulent", "requested_by_customer"] },
  metadata: { t: "metadata" },
  instructions_email: { t: "string" },
  refund_application_fee: { t: "bool" },
  reverse_transfer: { t: "bool" },
  origin: { t: "enum", values: ["customer_balance"] },
} as const satisfies Spec;

const METADATA_ONLY = { metadata: { t: "metadata" } } as const satisfies Spec;

const CHARGE_UPDATE = {
  metadata: { t: "metadata" },
  description: { t: "string" },
  receipt_email: { t: "string" },
  fraud_details: OPAQUE,
  shipping: OPAQUE,
  transfer_group: { t: "string" },
} as const satisfies Spec;

const DISPUTE_UPDATE = {
  metadata: { t: "metadata" },
  evidence: OPAQUE,
  submit: { t: "bool" },
  intended_submission_method: { t: "string" },
} as const satisfies Spec;

const PAYOUT_CREATE = {
  amount: { t: "int", required: true, min: 1 },
  currency: { t: "currency", required: true },
  destination: { t: "string" },
  metadata: { t: "metadata" },
  description: { t: "string" },
  method: { t: "enum", values: ["standard", "instant"] },
  statement_descriptor: { t: "string", maxLength: 22 },
  source_type: { t: "enum", values: ["bank_account", "card", "fpx"] },
  payout_method: { t: "string" },
} as const satisfies Spec;

const TRANSFER_CREATE = {
  amount: { t: "int", required: true, min: 1 },
  currency: { t: "currency", required: true },
  destination: { t: "string", required: true },
  metadata: { t: "metadata" },
  description: { t: "string" },
  transfer_group: { t: "string" },
  source_transaction: { t: "string" },
  source_type: { t: "enum", values: ["bank_account", "card", "fpx"] },
} as const satisfies Spec;

const TRANSFER_UPDATE = { metadata: { t: "metadata" }, description: { t: "string" } } as const satisfies Spec;

const PI_LIST = { ...LIST_SPEC, customer: { t: "string" } } as const satisfies Spec;
const CHARGE_LIST = { ...LIST_SPEC, customer: { t: "string" }, payment_intent: { t: "string" }, transfer_group: { t: "string" } } as const satisfies Spec;
const REFUND_LIST = { ...LIST_SPEC, charge: { t: "string" }, payment_intent: { t: "string" } } as const satisfies Spec;
const DISPUTE_LIST = { ...LIST_SPEC, charge: { t: "string" }, payment_intent: { t: "string" } } as const satisfies Spec;
const PAYOUT_LIST = {
  ...LIST_SPEC,
  status: { t: "string" },
  destination: { t: "string" },
  arrival_date: { t: "range" },
} as const satisfies Spec;
const TRANSFER_LIST = { ...LIST_SPEC, destination: { t: "string" }, transfer_group: { t: "string" } } as const satisfies Spec;
const EVENT_LIST = {
  ...LIST_SPEC,
  type: { t: "string" },
  types: { t: "strings" },
  delivery_success: { t: "bool" },
} as const satisfies Spec;
const TXN_LIST = {
  ...LIST_SPEC,
  type: { t: "string" },
  source: { t: "string" },
  currency: { t: "currency" },
  payout: { t: "string" },
} as const satisfies Spec;

function typeMatches(type: string, pattern: string): boolean {
  return pattern.endsWith(".*") ? type.startsWith(pattern.slice(0, -1)) : type === pattern;
}

const id0 = (ctx: ApiContext): string => ctx.ids[0]!;

// ---- the table -----------------------------------------------------------------------------------

export const ROUTES: Route[] = [
  // PaymentIntents
  {
    method: "POST",
    pattern: /^\/v1\/payment_intents$/,
    handler: (ctx) => {
      const p = readParams(PI_CREATE, ctx.raw);
      const pi = ctx.engine.createPaymentIntent(p, ctx.req);
      return { body: render(pi, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/payment_intents$/,
    handler: (ctx) => {
      const p = readParams(PI_LIST, ctx.raw);
      const page = ctx.state.paymentIntents.list("/v1/payment_intents", p, (pi) => p.customer === undefined || pi.customer === p.customer);
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/payment_intents/${ID}$`),
    handler: (ctx) => {
      const p = readParams(RETRIEVE, ctx.raw);
      return { body: render(ctx.state.paymentIntents.require(id0(ctx), "intent"), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/payment_intents/${ID}$`),
    handler: (ctx) => {
      const p = readParams(PI_UPDATE, ctx.raw);
      return { body: render(ctx.engine.updatePaymentIntent(id0(ctx), p), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/payment_intents/${ID}/confirm$`),
    handler: (ctx) => {
      const p = readParams(PI_CONFIRM, ctx.raw);
      return { body: render(ctx.engine.confirmPaymentIntent(id0(ctx), p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/payment_intents/${ID}/cancel$`),
    handler: (ctx) => {
      const p = readParams(PI_CANCEL, ctx.raw);
      return { body: render(ctx.engine.cancelPaymentIntent(id0(ctx), p.cancellation_reason, ctx.req), p.expand, ctx.state) };
    },
  },
  // Charges
  {
    method: "GET",
    pattern: /^\/v1\/charges$/,
    handler: (ctx) => {
      const p = readParams(CHARGE_LIST, ctx.raw);
      const page = ctx.state.charges.list(
        "/v1/charges",
        p,
        (c) =>
          (p.payment_intent === undefined || c.payment_intent === p.payment_intent) &&
          (p.customer === undefined || c.customer === p.customer) &&
          (p.transfer_group === undefined || c.transfer_group === p.transfer_group),
      );
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/charges/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.charges.require(id0(ctx)), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/charges/${ID}$`),
    handler: (ctx) => {
      const p = readParams(CHARGE_UPDATE, ctx.raw);
      return { body: render(ctx.engine.updateCharge(id0(ctx), p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/charges/${ID}/refunds$`),
    handler: (ctx) => {
      const p = readParams(LIST_SPEC, ctx.raw);
      const charge = ctx.state.charges.require(id0(ctx));
      const page = ctx.state.refunds.list(`/v1/charges/${charge.id}/refunds`, p, (r) => r.charge === charge.id);
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  // Refunds
  {
    method: "POST",
    pattern: /^\/v1\/refunds$/,
    handler: (ctx) => {
      const p = readParams(REFUND_CREATE, ctx.raw);
      return { body: render(ctx.engine.createRefund(p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/refunds$/,
    handler: (ctx) => {
      const p = readParams(REFUND_LIST, ctx.raw);
      const page = ctx.state.refunds.list(
        "/v1/refunds",
        p,
        (r) => (p.charge === undefined || r.charge === p.charge) && (p.payment_intent === undefined || r.payment_intent === p.payment_intent),
      );
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/refunds/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.refunds.require(id0(ctx)), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/refunds/${ID}$`),
    handler: (ctx) => {
      const p = readParams(METADATA_ONLY, ctx.raw);
      return { body: render(ctx.engine.updateRefund(id0(ctx), p, ctx.req), p.expand, ctx.state) };
    },
  },
  // Disputes
  {
    method: "GET",
    pattern: /^\/v1\/disputes$/,
    handler: (ctx) => {
      const p = readParams(DISPUTE_LIST, ctx.raw);
      const page = ctx.state.disputes.list(
        "/v1/disputes",
        p,
        (d) => (p.charge === undefined || d.charge === p.charge) && (p.payment_intent === undefined || d.payment_intent === p.payment_intent),
      );
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/disputes/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.disputes.require(id0(ctx), "dispute"), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/disputes/${ID}$`),
    handler: (ctx) => {
      const p = readParams(DISPUTE_UPDATE, ctx.raw);
      return { body: render(ctx.engine.updateDispute(id0(ctx), p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/disputes/${ID}/close$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.engine.acceptDispute(id0(ctx), ctx.req), p.expand, ctx.state) };
    },
  },
  // Payouts
  {
    method: "POST",
    pattern: /^\/v1\/payouts$/,
    handler: (ctx) => {
      const p = readParams(PAYOUT_CREATE, ctx.raw);
      return { body: render(ctx.engine.createPayout(p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/payouts$/,
    handler: (ctx) => {
      const p = readParams(PAYOUT_LIST, ctx.raw);
      const arrival = p.arrival_date;
      const page = ctx.state.payouts.list(
        "/v1/payouts",
        p,
        (po) =>
          (p.status === undefined || po.status === p.status) &&
          (p.destination === undefined || po.destination === p.destination) &&
          (arrival === undefined ||
            ((arrival.gt === undefined || po.arrival_date > arrival.gt) &&
              (arrival.gte === undefined || po.arrival_date >= arrival.gte) &&
              (arrival.lt === undefined || po.arrival_date < arrival.lt) &&
              (arrival.lte === undefined || po.arrival_date <= arrival.lte))),
      );
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/payouts/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.payouts.require(id0(ctx), "payout"), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/payouts/${ID}$`),
    handler: (ctx) => {
      const p = readParams(METADATA_ONLY, ctx.raw);
      return { body: render(ctx.engine.updatePayout(id0(ctx), p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/payouts/${ID}/cancel$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.engine.cancelPayout(id0(ctx), ctx.req), p.expand, ctx.state) };
    },
  },
  // Transfers (Connect)
  {
    method: "POST",
    pattern: /^\/v1\/transfers$/,
    handler: (ctx) => {
      const p = readParams(TRANSFER_CREATE, ctx.raw);
      return { body: render(ctx.engine.createTransfer(p, ctx.req), p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/transfers$/,
    handler: (ctx) => {
      const p = readParams(TRANSFER_LIST, ctx.raw);
      const page = ctx.state.transfers.list(
        "/v1/transfers",
        p,
        (t) => (p.destination === undefined || t.destination === p.destination) && (p.transfer_group === undefined || t.transfer_group === p.transfer_group),
      );
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/transfers/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.transfers.require(id0(ctx), "transfer"), p.expand, ctx.state) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/v1/transfers/${ID}$`),
    handler: (ctx) => {
      const p = readParams(TRANSFER_UPDATE, ctx.raw);
      return { body: render(ctx.engine.updateTransfer(id0(ctx), p, ctx.req), p.expand, ctx.state) };
    },
  },
  // Events
  {
    method: "GET",
    pattern: /^\/v1\/events$/,
    handler: (ctx) => {
      const p = readParams(EVENT_LIST, ctx.raw);
      if (p.type !== undefined && p.types !== undefined) {
        throw invalidRequest("You may only specify one of these parameters: type, types.", { code: "parameters_exclusive", param: "type" });
      }
      const page = ctx.state.events.list(
        "/v1/events",
        p,
        (e: Stripe.Event) =>
          (p.type === undefined || typeMatches(e.type, p.type)) &&
          (p.types === undefined || p.types.some((t) => typeMatches(e.type, t))) &&
          (p.delivery_success === undefined || (e.pending_webhooks === 0) === p.delivery_success),
      );
      return { body: page };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/events/${ID}$`),
    handler: (ctx) => {
      readParams({}, ctx.raw);
      return { body: clone(ctx.state.events.require(id0(ctx), "id")) };
    },
  },
  // Balance
  {
    method: "GET",
    pattern: /^\/v1\/balance$/,
    handler: (ctx) => {
      readParams({}, ctx.raw);
      return { body: ctx.engine.balance() };
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/balance_transactions$/,
    handler: (ctx) => {
      const p = readParams(TXN_LIST, ctx.raw);
      const payout = p.payout !== undefined ? ctx.state.payouts.require(p.payout, "payout") : undefined;
      const page = ctx.state.balanceTransactions.list(
        "/v1/balance_transactions",
        p,
        (t) =>
          (p.type === undefined || t.type === p.type) &&
          (p.source === undefined || t.source === p.source) &&
          (p.currency === undefined || t.currency === p.currency) &&
          (payout === undefined || t.id === payout.balance_transaction),
      );
      return { body: render(page, p.expand, ctx.state) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/v1/balance_transactions/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.balanceTransactions.require(id0(ctx)), p.expand, ctx.state) };
    },
  },
  // PaymentMethods (the ones the test cards created)
  {
    method: "GET",
    pattern: new RegExp(`^/v1/payment_methods/${ID}$`),
    handler: (ctx) => {
      const p = readParams({}, ctx.raw);
      return { body: render(ctx.state.paymentMethods.require(id0(ctx), "payment_method"), p.expand, ctx.state) };
    },
  },
];

export function matchRoute(method: string, path: string): { route: Route; ids: string[] } | { methodMismatch: true } | null {
  let pathMatched = false;
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (route.method === method) return { route, ids: m.slice(1) };
  }
  return pathMatched ? { methodMismatch: true } : null;
}
