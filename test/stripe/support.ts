import { expect } from "bun:test";
import type Stripe from "stripe";
import { signPayload } from "../../src/integrations/stripe/standin";
import { user, type As } from "../support/auth";
import type { ApiResponse, TestNode } from "../support/node";
import { stripeSettled, TEST_WEBHOOK_SECRET } from "../support/stripe";

/**
 * What the card-money suites share: a wallet of someone's, a deposit made and paid the way an app
 * and its card holder would (the Coffer API, then Stripe's SDK against the stand-in), a settled
 * wait, webhooks signed by hand, and what "nothing written" means for Stripe's tables.
 */
export function stripeOf(t: TestNode) {
  if (!t.stripe) throw new Error("this node has no Stripe stand-in");
  return t.stripe;
}

export async function newWallet(t: TestNode, owner: string, asset = "USD"): Promise<string> {
  const res = await t.api("POST", "/v1/wallets", { ownerId: owner, asset });
  expect(res.status).toBe(201);
  return res.body.id;
}

export async function makeDeposit(t: TestNode, walletId: string, amount: string, as: As, key?: string): Promise<ApiResponse> {
  return t.api("POST", `/v1/wallets/${walletId}/deposits`, { amount }, { as, ...(key ? { key } : {}) });
}

/** A deposit the card holder paid (with `card`), once Stripe and Coffer are both done with it. */
export async function paidDeposit(t: TestNode, walletId: string, amount: string, owner: string, card = "pm_card_visa"): Promise<{ id: string; paymentIntentId: string }> {
  const made = await makeDeposit(t, walletId, amount, user(owner));
  expect(made.status).toBe(201);
  await confirm(t, made.body.stripe.paymentIntentId, card);
  await settled(t);
  return { id: made.body.id, paymentIntentId: made.body.stripe.paymentIntentId };
}

/** The card holder pays a PaymentIntent (a declined card is Stripe's error, returned, not thrown). */
export async function confirm(t: TestNode, paymentIntentId: string, card: string): Promise<Stripe.PaymentIntent | Error> {
  return stripeOf(t).client.paymentIntents.confirm(paymentIntentId, { payment_method: card }).catch((error: Error) => error);
}

export function settled(t: TestNode): Promise<void> {
  return stripeSettled(t.node, stripeOf(t).standin);
}

export async function balanceOf(t: TestNode, walletId: string): Promise<{ posted: string; held: string; available: string; debt?: string }> {
  const res = await t.api("GET", `/v1/wallets/${walletId}`);
  expect(res.status).toBe(200);
  return res.body.balance;
}

export async function depositOf(t: TestNode, depositId: string): Promise<any> {
  const res = await t.api("GET", `/v1/deposits/${depositId}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** The charge of a paid PaymentIntent (disputes are opened on it). */
export async function chargeOf(t: TestNode, paymentIntentId: string): Promise<string> {
  const pi = await stripeOf(t).client.paymentIntents.retrieve(paymentIntentId);
  const charge = pi.latest_charge;
  if (!charge) throw new Error(`${paymentIntentId} has no charge`);
  return typeof charge === "string" ? charge : charge.id;
}

/** Every row a webhook or a deposit could write, counted, and every wallet's balance. */
export interface Footprint {
  events: number;
  deposits: number;
  refunds: number;
  disputes: number;
  journals: number;
  keys: number;
  outbox: number;
  wallets: unknown;
}

export async function footprint(t: TestNode): Promise<Footprint> {
  const [row] = await t.node.db`select
    (select count(*) from stripe_events)::int as events, (select count(*) from deposits)::int as deposits,
    (select count(*) from deposit_refunds)::int as refunds, (select count(*) from deposit_disputes)::int as disputes,
    (select count(*) from journals)::int as journals, (select count(*) from idempotency_keys)::int as keys,
    (select count(*) from events)::int as outbox,
    (select coalesce(json_agg(json_build_object('id', id, 'posted', posted::text, 'version', version) order by id), '[]'::json) from wallets) as wallets`;
  return row as unknown as Footprint;
}

/** POST a body to the node's webhook with a signature header (or none). */
export async function postWebhook(t: TestNode, body: string, signature: string | undefined): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.baseUrl}/v1/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(signature === undefined ? {} : { "stripe-signature": signature }) },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A `Stripe-Signature` for `body` exactly as Stripe makes it, at `atSeconds` (now by default), with `secret`. */
export function sign(body: string, atSeconds = Math.floor(Date.now() / 1000), secret = TEST_WEBHOOK_SECRET): string {
  return signPayload(body, secret, atSeconds);
}

/** The events the stand-in made of `type`, newest last, about the object `objectId`. */
export function eventsAbout(t: TestNode, type: string, objectId: string): Stripe.Event[] {
  return stripeOf(t).standin.events(type).filter((e) => (e.data.object as { id?: string }).id === objectId);
}

/** Journals of one kind booked for a deposit (each deposit's money moves once per step). */
export async function journalsOf(t: TestNode, depositId: string): Promise<string[]> {
  const rows = await t.node.db`select kind from journals where source_kind = 'deposit' and source_id = ${depositId} order by created_at, kind`;
  return rows.map((r) => r.kind as string);
}
