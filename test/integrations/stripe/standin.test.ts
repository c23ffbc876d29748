import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createHash, createHmac } from "node:crypto";
import Stripe from "stripe";
import { startStripeStandin, type StripeStandin } from "../../../src/integrations/stripe/standin";

/**
 * The Stripe stand-in, driven by the official SDK exactly as Coffer drives Stripe: every call goes
 * through `new Stripe(key, { host, port, protocol: "http" })`, every webhook is checked with the
 * SDK's own verifier, every error is the class the SDK makes of Stripe's answer.
 */

const SECRET = "whsec_standin_test_secret";
const KEY = "sk_test_standin_suite";

/**
 * Under Bun the SDK loads its web build, whose default crypto is async-only (`constructEventAsync`).
 * A node:crypto provider makes the synchronous `constructEvent` work too.
 */
class NodeHmacProvider extends Stripe.CryptoProvider {
  override computeHMACSignature(payload: string, secret: string): string {
    return createHmac("sha256", secret).update(payload, "utf8").digest("hex");
  }
  override async computeHMACSignatureAsync(payload: string, secret: string): Promise<string> {
    return this.computeHMACSignature(payload, secret);
  }
  override async computeSHA256Async(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(createHash("sha256").update(data).digest());
  }
}
const nodeCrypto = new NodeHmacProvider();

interface Received {
  body: string;
  signature: string;
  event: Stripe.Event;
  at: number;
}

/** A webhook endpoint that records what it gets and answers what the test tells it to. */
function startReceiver() {
  const received: Received[] = [];
  let answer: (event: Stripe.Event, attempt: number) => number = () => 200;
  const attempts = new Map<string, number>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = await req.text();
      const event = JSON.parse(body) as Stripe.Event;
      received.push({ body, signature: req.headers.get("stripe-signature") ?? "", event, at: Date.now() });
      const n = (attempts.get(event.id) ?? 0) + 1;
      attempts.set(event.id, n);
      return new Response(JSON.stringify({ received: true }), { status: answer(event, n) });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/v1/webhooks/stripe`,
    received,
    types: () => received.map((r) => r.event.type),
    answerWith(fn: (event: Stripe.Event, attempt: number) => number) {
      answer = fn;
    },
    clear() {
      received.length = 0;
      attempts.clear();
      answer = () => 200;
    },
    stop: () => server.stop(true),
  };
}

let standin: StripeStandin;
let receiver: ReturnType<typeof startReceiver>;
let stripe: Stripe;

beforeAll(async () => {
  receiver = startReceiver();
  standin = await startStripeStandin({
    port: 0,
    webhookUrl: receiver.url,
    webhookSecret: SECRET,
    retry: { baseDelayMs: 20, maxAttempts: 4, timeoutMs: 2_000 },
    settleDelayMs: 20,
    log: () => {},
  });
  stripe = new Stripe(KEY, { ...standin.stripeConfig, maxNetworkRetries: 0 });
});

afterAll(async () => {
  await standin.stop();
  receiver.stop();
});

beforeEach(async () => {
  await standin.idle(); // deliveries a previous test left in flight land before the slate is wiped
  standin.reset();
  standin.setDelivery("normal");
  receiver.clear();
});

const CARD_ONLY = { payment_method_types: ["card"] };

async function pay(paymentMethod: string, amount = 2_000, metadata: Record<string, string> = { deposit_id: "dep_1" }) {
  return stripe.paymentIntents.create({ amount, currency: "usd", metadata, payment_method: paymentMethod, confirm: true, ...CARD_ONLY });
}

async function caught(p: Promise<unknown>): Promise<InstanceType<typeof Stripe.errors.StripeError>> {
  try {
    await p;
  } catch (err) {
    return err as InstanceType<typeof Stripe.errors.StripeError>;
  }
  throw new Error("expected the call to fail");
}

async function verifiedEvents(): Promise<Stripe.Event[]> {
  await standin.idle();
  return Promise.all(receiver.received.map((r) => stripe.webhooks.constructEventAsync(r.body, r.signature, SECRET)));
}

describe("payment intents with Stripe's test cards", () => {
  test("pm_card_visa succeeds: amount received, a captured charge, and signed events that verify", async () => {
    const pi = await stripe.paymentIntents.create({
      amount: 2_000,
      currency: "USD",
      metadata: { deposit_id: "dep_1" },
      payment_method: "pm_card_visa",
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: "never" },
      expand: ["latest_charge"],
    });
    expect(pi.id).toMatch(/^pi_/);
    expect(pi.object).toBe("payment_intent");
    expect(pi.status).toBe("succeeded");
    expect(pi.currency).toBe("usd");
    expect(pi.amount_received).toBe(2_000);
    expect(pi.livemode).toBe(false);
    expect(pi.client_secret).toStartWith(`${pi.id}_secret_`);
    const charge = pi.latest_charge as Stripe.Charge;
    expect(charge.id).toMatch(/^ch_/);
    expect(charge.amount_captured).toBe(2_000);
    expect(charge.paid).toBe(true);
    expect(charge.metadata.deposit_id).toBe("dep_1");
    expect(charge.payment_method_details?.card?.last4).toBe("4242");

    const events = await verifiedEvents();
    expect(events.map((e) => e.type)).toEqual(["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]);
    const succeeded = events[2] as Stripe.PaymentIntentSucceededEvent;
    expect(succeeded.id).toMatch(/^evt_/);
    expect(succeeded.object).toBe("event");
    expect(succeeded.livemode).toBe(false);
    expect(succeeded.api_version).toBe(Stripe.API_VERSION);
    expect(succeeded.pending_webhooks).toBe(1);
    expect(succeeded.request?.id).toMatch(/^req_/);
    expect(succeeded.data.object.id).toBe(pi.id);
    expect(succeeded.data.object.amount_received).toBe(2_000);
    expect(succeeded.data.object.metadata.deposit_id).toBe("dep_1");
    // The synchronous verifier works too, given a synchronous crypto provider.
    const first = receiver.received[0]!;
    expect(stripe.webhooks.constructEvent(first.body, first.signature, SECRET, undefined, nodeCrypto).id).toBe(events[0]!.id);
    expect(first.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    // Once delivered, the event no longer counts as pending.
    expect((await stripe.events.retrieve(succeeded.id)).pending_webhooks).toBe(0);
  });

  test("a tampered webhook body or a wrong secret fails the SDK's verification", async () => {
    await pay("pm_card_visa");
    await standin.idle();
    const { body, signature } = receiver.received[0]!;
    const tampered = body.replace('"amount": 2000', '"amount": 2000000');
    expect(tampered).not.toBe(body);
    await expect(stripe.webhooks.constructEventAsync(tampered, signature, SECRET)).rejects.toBeInstanceOf(
      Stripe.errors.StripeSignatureVerificationError,
    );
    await expect(stripe.webhooks.constructEventAsync(body, signature, "whsec_other")).rejects.toBeInstanceOf(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  test("confirming later: requires_confirmation, then a return_url is needed while automatic payment methods allow redirects", async () => {
    const pi = await stripe.paymentIntents.create({ amount: 1_500, currency: "eur", payment_method: "pm_card_mastercard" });
    expect(pi.status).toBe("requires_confirmation");
    expect(pi.automatic_payment_methods?.enabled).toBe(true);
    const err = await caught(stripe.paymentIntents.confirm(pi.id));
    expect(err.type).toBe("StripeInvalidRequestError");
    expect(err.param).toBe("return_url");
    const confirmed = await stripe.paymentIntents.confirm(pi.id, { return_url: "https://coffer.test/return" });
    expect(confirmed.status).toBe("succeeded");
    expect(confirmed.payment_method).toMatch(/^pm_/);
    const again = await caught(stripe.paymentIntents.confirm(pi.id, { return_url: "https://coffer.test/return" }));
    expect(again.code).toBe("payment_intent_unexpected_state");
  });

  test("pm_card_chargeDeclined fails with a 402 card_error and leaves the intent requiring a payment method", async () => {
    const err = await caught(pay("pm_card_chargeDeclined"));
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(err.type).toBe("StripeCardError");
    expect(err.rawType).toBe("card_error");
    expect(err.statusCode).toBe(402);
    expect(err.code).toBe("card_declined");
    expect(err.decline_code).toBe("generic_decline");
    const failedPi = err.payment_intent!;
    expect(failedPi.status).toBe("requires_payment_method");
    const pi = await stripe.paymentIntents.retrieve(failedPi.id);
    expect(pi.status).toBe("requires_payment_method");
    expect(pi.last_payment_error?.code).toBe("card_declined");
    expect(pi.amount_received).toBe(0);
    const charge = await stripe.charges.retrieve(err.charge!);
    expect(charge.status).toBe("failed");
    expect(charge.failure_code).toBe("card_declined");

    const events = await verifiedEvents();
    expect(events.map((e) => e.type)).toEqual(["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]);
    const failed = events[2] as Stripe.PaymentIntentPaymentFailedEvent;
    expect(failed.data.object.last_payment_error?.decline_code).toBe("generic_decline");

    // The same intent can then be paid with another card.
    const retried = await stripe.paymentIntents.confirm(pi.id, { payment_method: "pm_card_visa" });
    expect(retried.status).toBe("succeeded");
  });

  test("pm_card_chargeDeclinedInsufficientFunds carries its decline code", async () => {
    const err = await caught(pay("pm_card_chargeDeclinedInsufficientFunds"));
    expect(err.code).toBe("card_declined");
    expect(err.decline_code).toBe("insufficient_funds");
  });

  test("pm_card_createDispute succeeds, then a dispute for the full amount opens (needs_response)", async () => {
    const pi = await pay("pm_card_createDispute", 3_000);
    expect(pi.status).toBe("succeeded");
    const events = await verifiedEvents();
    expect(events.map((e) => e.type)).toEqual([
      "payment_intent.created",
      "charge.succeeded",
      "payment_intent.succeeded",
      "charge.dispute.created",
      "charge.dispute.funds_withdrawn",
    ]);
    const created = events[3] as Stripe.ChargeDisputeCreatedEvent;
    expect(created.data.object.id).toMatch(/^dp_/);
    expect(created.data.object.amount).toBe(3_000);
    expect(created.data.object.status).toBe("needs_response");
    expect(created.data.object.charge).toBe(pi.latest_charge as string);
    expect(created.data.object.payment_intent).toBe(pi.id);
    expect(created.request).toEqual({ id: null, idempotency_key: null });
    const charge = await stripe.charges.retrieve(pi.latest_charge as string);
    expect(charge.disputed).toBe(true);
    const list = await stripe.disputes.list({ payment_intent: pi.id });
    expect(list.data.map((d) => d.id)).toEqual([created.data.object.id]);
    // A disputed charge cannot be refunded.
    const refund = await caught(stripe.refunds.create({ payment_intent: pi.id }));
    expect(refund.code).toBe("charge_disputed");
  });

  test("a dispute closed won returns the funds; one accepted through the API is lost", async () => {
    const won = await pay("pm_card_createDispute");
    const lost = await pay("pm_card_createDispute");
    const [dpWon] = (await stripe.disputes.list({ payment_intent: won.id })).data;
    const [dpLost] = (await stripe.disputes.list({ payment_intent: lost.id })).data;

    const res = await fetch(`${standin.url}/_standin/disputes/${dpWon!.id}/close`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status: "won" }),
    });
    expect(res.status).toBe(200);
    const closedLost = await stripe.disputes.close(dpLost!.id);
    expect(closedLost.status).toBe("lost");
    expect((await stripe.disputes.retrieve(dpWon!.id)).status).toBe("won");
    await expect(stripe.disputes.close(dpWon!.id)).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);

    const events = await verifiedEvents();
    const closed = events.filter((e): e is Stripe.ChargeDisputeClosedEvent => e.type === "charge.dispute.closed");
    expect(closed.map((e) => [e.data.object.id, e.data.object.status])).toEqual([
      [dpWon!.id, "won"],
      [dpLost!.id, "lost"],
    ]);
    expect(events.filter((e) => e.type === "charge.dispute.funds_reinstated").length).toBe(1);
  });
});

describe("idempotency", () => {
  const params = { amount: 1_000, currency: "usd", payment_method: "pm_card_visa", confirm: true, ...CARD_ONLY };

  test("the same key with the same parameters replays the first answer and runs nothing again", async () => {
    const first = await stripe.paymentIntents.create(params, { idempotencyKey: "deposit-1" });
    const second = await stripe.paymentIntents.create(params, { idempotencyKey: "deposit-1" });
    expect(second.id).toBe(first.id);
    expect(second).toEqual(first);
    // Under Bun the SDK's fetch client hands back a Headers object, whatever the type says.
    expect((first.lastResponse.headers as unknown as Headers).get("idempotent-replayed")).toBeNull();
    const headers = second.lastResponse.headers as unknown as Headers;
    expect(headers.get("idempotent-replayed")).toBe("true");
    expect(headers.get("original-request")).toBe(first.lastResponse.requestId);
    expect((await stripe.paymentIntents.list()).data.length).toBe(1);
    await standin.idle();
    expect(receiver.types().filter((t) => t === "payment_intent.succeeded").length).toBe(1);
  });

  test("the same key with other parameters is an idempotency_error", async () => {
    await stripe.paymentIntents.create(params, { idempotencyKey: "deposit-2" });
    const err = await caught(stripe.paymentIntents.create({ ...params, amount: 1_001 }, { idempotencyKey: "deposit-2" }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err.rawType).toBe("idempotency_error");
    expect(err.statusCode).toBe(400);
    const other = await caught(stripe.refunds.create({ amount: 5 } as Stripe.RefundCreateParams, { idempotencyKey: "deposit-2" }));
    expect(other.rawType).toBe("idempotency_error");
  });

  test("keys belong to one API key", async () => {
    const other = new Stripe("sk_test_another_account", { ...standin.stripeConfig, maxNetworkRetries: 0 });
    const a = await stripe.paymentIntents.create(params, { idempotencyKey: "shared-key" });
    const b = await other.paymentIntents.create(params, { idempotencyKey: "shared-key" });
    expect(b.id).not.toBe(a.id);
  });

  test("a declined card's 402 is replayed for its key, not charged twice", async () => {
    const declined = { ...params, payment_method: "pm_card_chargeDeclined" };
    const e1 = await caught(stripe.paymentIntents.create(declined, { idempotencyKey: "decline-1" }));
    const e2 = await caught(stripe.paymentIntents.create(declined, { idempotencyKey: "decline-1" }));
    expect(e2.statusCode).toBe(402);
    expect(e2.charge).toBe(e1.charge!);
    expect((await stripe.charges.list()).data.length).toBe(1);
  });

  test("a request that comes while the first with its key is still running waits for it and replays it", async () => {
    standin.injectFault({ mode: "delay", when: "after", delayMs: 300, count: 1, path: "/v1/payment_intents" });
    const [a, b] = await Promise.all([
      stripe.paymentIntents.create(params, { idempotencyKey: "racing" }),
      Bun.sleep(50).then(() => stripe.paymentIntents.create(params, { idempotencyKey: "racing" })),
    ]);
    expect(b.id).toBe(a.id);
    expect((b.lastResponse.headers as unknown as Headers).get("idempotent-replayed")).toBe("true");
    expect((await stripe.paymentIntents.list()).data.length).toBe(1);
  });

  test("parameter errors are not stored: the corrected retry with the same key runs", async () => {
    const bad = await caught(stripe.paymentIntents.create({ ...params, amount: 10 }, { idempotencyKey: "fix-me" }));
    expect(bad.code).toBe("amount_too_small");
    // Different parameters after a validation failure are fine: nothing was saved for the key.
    const good = await stripe.paymentIntents.create(params, { idempotencyKey: "fix-me" });
    expect(good.status).toBe("succeeded");
  });
});

describe("refunds", () => {
  test("partial then the rest, then nothing left: charge_already_refunded", async () => {
    const pi = await pay("pm_card_visa", 5_000);
    const partial = await stripe.refunds.create({ payment_intent: pi.id, amount: 2_000, metadata: { refund_id: "r1" } });
    expect(partial.id).toMatch(/^re_/);
    expect(partial.status).toBe("succeeded");
    expect(partial.amount).toBe(2_000);
    expect(partial.payment_intent).toBe(pi.id);
    const rest = await stripe.refunds.create({ charge: pi.latest_charge as string });
    expect(rest.amount).toBe(3_000);
    const charge = await stripe.charges.retrieve(pi.latest_charge as string, { expand: ["refunds"] });
    expect(charge.amount_refunded).toBe(5_000);
    expect(charge.refunded).toBe(true);
    expect(charge.refunds?.data.map((r) => r.id)).toEqual([rest.id, partial.id]);
    const none = await caught(stripe.refunds.create({ payment_intent: pi.id, amount: 1 }));
    expect(none.type).toBe("StripeInvalidRequestError");
    expect(none.code).toBe("charge_already_refunded");
    expect(none.statusCode).toBe(400);

    const events = await verifiedEvents();
    const refunded = events.filter((e): e is Stripe.ChargeRefundedEvent => e.type === "charge.refunded");
    expect(refunded.map((e) => e.data.object.amount_refunded)).toEqual([2_000, 5_000]);
    expect(events.filter((e) => e.type === "refund.created").length).toBe(2);
    expect((await stripe.refunds.list({ payment_intent: pi.id })).data.length).toBe(2);
  });

  test("more than is left is refused with amount_too_large", async () => {
    const pi = await pay("pm_card_visa", 1_000);
    await stripe.refunds.create({ payment_intent: pi.id, amount: 600 });
    const err = await caught(stripe.refunds.create({ payment_intent: pi.id, amount: 500 }));
    expect(err.code).toBe("amount_too_large");
    expect(err.param).toBe("amount");
    expect((await stripe.charges.retrieve(pi.latest_charge as string)).amount_refunded).toBe(600);
  });

  test("ten partial refunds racing never refund more than was received", async () => {
    const pi = await pay("pm_card_visa", 1_000);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => stripe.refunds.create({ payment_intent: pi.id, amount: 300 })),
    );
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(3);
    expect((await stripe.charges.retrieve(pi.latest_charge as string)).amount_refunded).toBe(900);
  });

  test("a refund made to fail gives the charge its amount back (charge.refund.updated)", async () => {
    const pi = await pay("pm_card_visa", 1_000);
    const refund = await stripe.refunds.create({ payment_intent: pi.id });
    const res = await fetch(`${standin.url}/_standin/refunds/${refund.id}/fail`, { method: "POST" });
    expect(res.status).toBe(200);
    const failed = await stripe.refunds.retrieve(refund.id);
    expect(failed.status).toBe("failed");
    expect(failed.failure_balance_transaction).toMatch(/^txn_/);
    expect((await stripe.charges.retrieve(pi.latest_charge as string)).amount_refunded).toBe(0);
    const events = await verifiedEvents();
    const updated = events.find((e): e is Stripe.ChargeRefundUpdatedEvent => e.type === "charge.refund.updated");
    expect(updated?.data.object.status).toBe("failed");
    expect(events.some((e) => e.type === "refund.failed")).toBe(true);
  });

  test("pm_card_refundFail: the refund answers succeeded, then fails by itself", async () => {
    const pi = await pay("pm_card_refundFail", 1_000);
    const refund = await stripe.refunds.create({ payment_intent: pi.id });
    expect(refund.status).toBe("succeeded");
    await standin.idle();
    expect((await stripe.refunds.retrieve(refund.id)).status).toBe("failed");
    expect(receiver.types()).toContain("charge.refund.updated");
  });
});

describe("payouts and transfers", () => {
  test("a payout to a bank account goes pending, then paid (payout.paid)", async () => {
    const po = await stripe.payouts.create({ amount: 7_500, currency: "usd", destination: "ba_coffer_ok", metadata: { withdrawal_id: "w1" } });
    expect(po.id).toMatch(/^po_/);
    expect(po.status).toBe("pending");
    expect(po.destination).toBe("ba_coffer_ok");
    const events = await verifiedEvents();
    expect(events.map((e) => e.type)).toEqual(["payout.created", "payout.updated", "payout.paid"]);
    const paid = events[2] as Stripe.PayoutPaidEvent;
    expect(paid.data.object.metadata?.withdrawal_id).toBe("w1");
    expect((await stripe.payouts.retrieve(po.id)).status).toBe("paid");
  });

  test("a payout to a failing test bank account fails with its failure code (payout.failed)", async () => {
    const po = await stripe.payouts.create({ amount: 100, currency: "usd", destination: "btok_us_verified_noAccount" });
    expect(po.status).toBe("pending");
    const events = await verifiedEvents();
    const failed = events.find((e): e is Stripe.PayoutFailedEvent => e.type === "payout.failed");
    expect(failed?.data.object.failure_code).toBe("no_account");
    const now = await stripe.payouts.retrieve(po.id);
    expect(now.status).toBe("failed");
    expect(now.failure_code).toBe("no_account");
  });

  test("with manual payouts the control API decides: pay one, fail another, even after it was paid", async () => {
    const manual = await startStripeStandin({ port: 0, payouts: "manual", log: () => {} });
    try {
      const client = new Stripe(KEY, { ...manual.stripeConfig, maxNetworkRetries: 0 });
      const a = await client.payouts.create({ amount: 100, currency: "usd", destination: "ba_x" });
      const b = await client.payouts.create({ amount: 200, currency: "usd", destination: "ba_y" });
      await manual.idle();
      expect((await client.payouts.retrieve(a.id)).status).toBe("pending");
      expect((await fetch(`${manual.url}/_standin/payouts/${a.id}/pay`, { method: "POST" })).status).toBe(200);
      const failRes = await fetch(`${manual.url}/_standin/payouts/${b.id}/fail`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ failure_code: "account_closed" }),
      });
      expect(failRes.status).toBe(200);
      expect((await client.payouts.retrieve(a.id)).status).toBe("paid");
      expect((await client.payouts.retrieve(b.id)).failure_code).toBe("account_closed");
      manual.failPayout(a.id, "could_not_process");
      expect((await client.payouts.retrieve(a.id)).status).toBe("failed");
      expect(manual.events().map((e) => e.type)).toEqual([
        "payout.created",
        "payout.created",
        "payout.updated",
        "payout.paid",
        "payout.updated",
        "payout.failed",
        "payout.updated",
        "payout.failed",
      ]);
    } finally {
      await manual.stop();
    }
  });

  test("a Connect transfer to an account is created (transfer.created); an unknown account is refused", async () => {
    const tr = await stripe.transfers.create({ amount: 1_234, currency: "usd", destination: "acct_1CofferChama", metadata: { withdrawal_id: "w2" } });
    expect(tr.id).toMatch(/^tr_/);
    expect(tr.destination).toBe("acct_1CofferChama");
    expect(tr.destination_payment).toMatch(/^py_/);
    const events = await verifiedEvents();
    expect(events.map((e) => e.type)).toEqual(["transfer.created"]);
    const err = await caught(stripe.transfers.create({ amount: 1, currency: "usd", destination: "acct_missing" }));
    expect(err.code).toBe("resource_missing");
    expect(err.param).toBe("destination");
  });
});

describe("events", () => {
  test("events list newest first, filter by type, and page with the SDK's auto-pagination", async () => {
    await pay("pm_card_visa");
    await pay("pm_card_visa");
    const succeeded = await stripe.events.list({ type: "payment_intent.succeeded" });
    expect(succeeded.data.length).toBe(2);
    expect(succeeded.data[0]!.created).toBeGreaterThanOrEqual(succeeded.data[1]!.created);
    const ids: string[] = [];
    for await (const e of stripe.events.list({ limit: 2 })) ids.push(e.id);
    expect(ids).toEqual(
      standin
        .events()
        .map((e) => e.id)
        .reverse(),
    );
    const one = await stripe.events.retrieve(ids[0]!);
    expect(one.id).toBe(ids[0]!);
  });
});

describe("webhook delivery", () => {
  test("a failing endpoint is retried with backoff until it answers 2xx", async () => {
    receiver.answerWith((_event, attempt) => (attempt <= 2 ? 500 : 200));
    await stripe.payouts.create({ amount: 100, currency: "usd", destination: "ba_ok" });
    await standin.idle();
    const created = standin.deliveries().filter((d) => d.event_type === "payout.created");
    expect(created.map((d) => [d.attempt, d.status, d.ok])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 200, true],
    ]);
  });

  test("twice: every event id arrives exactly twice", async () => {
    standin.setDelivery("twice");
    await pay("pm_card_visa");
    const events = await verifiedEvents();
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
    expect(counts.size).toBe(3);
    expect([...counts.values()]).toEqual([2, 2, 2]);
  });

  test("shuffled: a burst arrives in another order, all of it", async () => {
    standin.setDelivery("shuffled");
    await pay("pm_card_createDispute");
    const events = await verifiedEvents();
    const created = standin.events().map((e) => e.id);
    const arrived = events.map((e) => e.id);
    expect(arrived).not.toEqual(created);
    expect([...arrived].sort()).toEqual([...created].sort());
  });

  test("late: nothing arrives before the delay, everything after it", async () => {
    standin.setDelivery("late:300");
    const started = Date.now();
    await pay("pm_card_visa");
    await Bun.sleep(100);
    expect(receiver.received.length).toBe(0);
    await standin.idle();
    expect(receiver.received.length).toBe(3);
    for (const r of receiver.received) expect(r.at - started).toBeGreaterThanOrEqual(290);
  });

  test("the switch combines and is reachable over HTTP", async () => {
    const res = await fetch(`${standin.url}/_standin/delivery`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode: "twice,late:50" }),
    });
    expect(await res.json()).toMatchObject({ mode: "twice,late:50", twice: true, shuffled: false, lateMs: 50 });
    await stripe.transfers.create({ amount: 1, currency: "usd", destination: "acct_x" });
    await standin.idle();
    expect(receiver.types()).toEqual(["transfer.created", "transfer.created"]);
  });
});

describe("faults", () => {
  const params = { amount: 1_000, currency: "usd", payment_method: "pm_card_visa", confirm: true, ...CARD_ONLY };

  test("a 500 reaches the SDK as StripeAPIError and nothing is created", async () => {
    standin.injectFault({ mode: "500", count: 1 });
    const err = await caught(stripe.paymentIntents.create(params));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(err.statusCode).toBe(500);
    expect((await stripe.paymentIntents.list()).data.length).toBe(0);
  });

  test("with SDK retries a passing 500 is retried with the same key and makes one PaymentIntent", async () => {
    const retrying = new Stripe(KEY, { ...standin.stripeConfig, maxNetworkRetries: 2 });
    standin.injectFault({ mode: "500", count: 1, path: "/v1/payment_intents" });
    const pi = await retrying.paymentIntents.create(params);
    expect(pi.status).toBe("succeeded");
    expect((await stripe.paymentIntents.list()).data.length).toBe(1);
  });

  test("a dropped connection is a StripeConnectionError", async () => {
    standin.injectFault({ mode: "close", count: 2 }); // the SDK retries a reset connection once by itself
    const err = await caught(stripe.paymentIntents.create(params));
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect((await stripe.paymentIntents.list()).data.length).toBe(0);
  });

  test("a hanging API times the SDK out", async () => {
    const impatient = new Stripe(KEY, { ...standin.stripeConfig, maxNetworkRetries: 0, timeout: 300 });
    standin.injectFault({ mode: "hang", count: 1, delayMs: 2_000 });
    const err = await caught(impatient.paymentIntents.create(params));
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
  });

  test("a 500 after Stripe acted: the retry with the same key gets the first answer, one PaymentIntent", async () => {
    standin.injectFault({ mode: "500", when: "after", count: 1 });
    const err = await caught(stripe.paymentIntents.create(params, { idempotencyKey: "lost-answer" }));
    expect(err.statusCode).toBe(500);
    const retried = await stripe.paymentIntents.create(params, { idempotencyKey: "lost-answer" });
    expect(retried.status).toBe("succeeded");
    expect((await stripe.paymentIntents.list()).data.map((p) => p.id)).toEqual([retried.id]);
  });

  test("faults can be set over HTTP and aimed at one path", async () => {
    const res = await fetch(`${standin.url}/_standin/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode: "error", status: 429, count: 1, path: "/v1/payouts" }),
    });
    expect(res.status).toBe(200);
    expect((await stripe.paymentIntents.create(params)).status).toBe("succeeded");
    const err = await caught(stripe.payouts.create({ amount: 1, currency: "usd" }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect((await stripe.payouts.create({ amount: 1, currency: "usd" })).status).toBe("pending");
  });
});

describe("errors as the SDK parses them", () => {
  test("an unknown parameter, a missing one, an unknown object, a bad key", async () => {
    const unknown = await caught(stripe.paymentIntents.create({ amount: 100, currency: "usd", amout: 5 } as Stripe.PaymentIntentCreateParams));
    expect(unknown.type).toBe("StripeInvalidRequestError");
    expect(unknown.code).toBe("parameter_unknown");
    expect(unknown.param).toBe("amout");

    const missing = await caught(stripe.paymentIntents.create({ currency: "usd" } as Stripe.PaymentIntentCreateParams));
    expect(missing.code).toBe("parameter_missing");
    expect(missing.param).toBe("amount");

    const notFound = await caught(stripe.paymentIntents.retrieve("pi_nope"));
    expect(notFound.statusCode).toBe(404);
    expect(notFound.code).toBe("resource_missing");

    const badCard = await caught(pay("pm_card_doesNotExist"));
    expect(badCard.code).toBe("resource_missing");
    expect(badCard.param).toBe("payment_method");

    const live = new Stripe("sk_live_not_here", { ...standin.stripeConfig, maxNetworkRetries: 0 });
    const auth = await caught(live.paymentIntents.list());
    expect(auth).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(auth.statusCode).toBe(401);

    const raw = await fetch(`${standin.url}/v1/payment_intents`, { headers: { authorization: `Bearer ${KEY}` }, method: "DELETE" });
    expect(raw.status).toBe(404);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
  });

  test("the wire format: bracket parameters, expand[], basic auth as curl sends it", async () => {
    const res = await fetch(`${standin.url}/v1/payment_intents`, {
      method: "POST",
      headers: { authorization: `Basic ${btoa(`${KEY}:`)}`, "content-type": "application/x-www-form-urlencoded" },
      body: "amount=1200&currency=usd&metadata[deposit_id]=dep%209&payment_method_types[]=card&payment_method=pm_card_visa&confirm=true&expand[]=latest_charge",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("request-id")).toMatch(/^req_/);
    const pi = (await res.json()) as Stripe.PaymentIntent;
    expect(pi.metadata).toEqual({ deposit_id: "dep 9" });
    expect((pi.latest_charge as Stripe.Charge).object).toBe("charge");
  });

  test("amounts are integers in minor units; decimals are refused", async () => {
    const res = await fetch(`${standin.url}/v1/payment_intents`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/x-www-form-urlencoded" },
      body: "amount=10.50&currency=usd",
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; param: string } };
    expect(body.error).toMatchObject({ code: "parameter_invalid_integer", param: "amount" });
  });
});
