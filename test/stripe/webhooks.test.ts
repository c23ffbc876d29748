import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { idFromKey } from "../../src/api/ids";
import { paymentIntentKey } from "../../src/integrations/stripe/client";
import { scopeOf } from "../../lib/principal";
import { user } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { TEST_WEBHOOK_SECRET } from "../support/stripe";
import {
  balanceOf,
  confirm,
  depositOf,
  eventsAbout,
  footprint,
  journalsOf,
  makeDeposit,
  newWallet,
  paidDeposit,
  postWebhook,
  settled,
  sign,
  stripeOf,
} from "./support";

/**
 * POST /v1/webhooks/stripe against a real node and the Stripe stand-in: only what Stripe signed is
 * taken, each event once, whatever order and however often it comes, and only Coffer's objects
 * move Coffer's money.
 */
let t: TestNode;
const OWNER = `hooks-${crypto.randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  t = await startTestNode("webhooks");
});
afterAll(() => t.stop());

/** Run `act` with Stripe's webhooks to Coffer cut: events are made and kept at Stripe, not sent. */
async function withWebhooksOff<T>(act: () => Promise<T>): Promise<T> {
  const s = stripeOf(t);
  s.standin.setWebhook(undefined);
  try {
    return await act();
  } finally {
    s.connect(t.baseUrl);
  }
}

/** A deposit paid at Stripe whose events Coffer has not heard yet; its payment_intent.succeeded event's body. */
async function paidUnheard(amount = "10.00"): Promise<{ walletId: string; depositId: string; paymentIntentId: string; body: string }> {
  const walletId = await newWallet(t, OWNER);
  const made = await makeDeposit(t, walletId, amount, user(OWNER));
  expect(made.status).toBe(201);
  const paymentIntentId = made.body.stripe.paymentIntentId as string;
  await withWebhooksOff(async () => {
    expect(await confirm(t, paymentIntentId, "pm_card_visa")).toMatchObject({ status: "succeeded" });
    await stripeOf(t).standin.idle();
  });
  const [event] = eventsAbout(t, "payment_intent.succeeded", paymentIntentId);
  return { walletId, depositId: made.body.id, paymentIntentId, body: JSON.stringify(event) };
}

describe("a webhook Stripe did not sign is refused", () => {
  test("a missing, wrong, foreign, stale, future-dated or tampered signature answers 400 and writes nothing", async () => {
    const { walletId, body } = await paidUnheard("25.00");
    const now = Math.floor(Date.now() / 1000);
    const tampered = body.replace('"amount_received":2500', '"amount_received":2500000');
    expect(tampered).not.toBe(body);
    const attempts: [string, string, string | undefined][] = [
      ["no signature", body, undefined],
      ["an empty signature", body, ""],
      ["garbage", body, "not-a-signature"],
      ["a signature without a timestamp", body, sign(body).replace(/^t=\d+,/, "")],
      ["two timestamps", body, `t=${now},${sign(body)}`],
      ["the wrong secret", body, sign(body, now, "whsec_someone0elses0secret")],
      ["a signature of another body", body, sign(`${body} `)],
      ["stale: signed 301 s ago", body, sign(body, now - 301)],
      ["from the future: signed for 301 s from now", body, sign(body, now + 301)],
      ["a body changed after signing", tampered, sign(body)],
      ["a signature of the right body over a truncated one", body.slice(0, -1), sign(body)],
    ];
    // Whatever the node's own workers still had in hand is done before the footprint is taken.
    await settled(t);
    const before = await footprint(t);
    for (const [what, sent, signature] of attempts) {
      const res = await postWebhook(t, sent, signature);
      expect({ what, status: res.status, code: res.body?.code }).toEqual({ what, status: 400, code: "WEBHOOK_SIGNATURE_INVALID" });
    }
    expect(await footprint(t)).toEqual(before);
    expect((await balanceOf(t, walletId)).posted).toBe("0.00");

    // The same body, signed as Stripe signs it (even 299 s ago or ahead), is taken.
    expect((await postWebhook(t, body, sign(body, now - 299))).status).toBe(200);
    await settled(t);
    expect((await balanceOf(t, walletId)).posted).toBe("25.00");
  });
});

describe("each event is taken once", () => {
  test("the same event delivered 10 times at once is credited once", async () => {
    const { walletId, depositId, body } = await paidUnheard("10.00");
    const answers = await Promise.all(Array.from({ length: 10 }, () => postWebhook(t, body, sign(body))));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    await settled(t);
    expect((await balanceOf(t, walletId)).posted).toBe("10.00");
    expect(await journalsOf(t, depositId)).toEqual(["deposit"]);
    const [row] = await t.node.db`select count(*)::int as n from stripe_events where id = ${JSON.parse(body).id}`;
    expect(row!.n).toBe(1);
  });

  test("an event replayed later answers 200 and does nothing", async () => {
    const { walletId, body } = await paidUnheard("3.00");
    expect((await postWebhook(t, body, sign(body))).status).toBe(200);
    await settled(t);
    const before = await footprint(t);
    expect((await postWebhook(t, body, sign(body))).status).toBe(200);
    await settled(t);
    expect(await footprint(t)).toEqual(before);
    expect((await balanceOf(t, walletId)).posted).toBe("3.00");
  });

  test("every event delivered twice, shuffled and late still ends with the right balances", async () => {
    const s = stripeOf(t);
    s.standin.setDelivery("twice,shuffled,late:30");
    try {
      const walletId = await newWallet(t, OWNER);
      const deposit = await paidDeposit(t, walletId, "40.00", OWNER);
      // A refund through Coffer, and one made at Stripe directly (its dashboard).
      expect((await t.api("POST", `/v1/deposits/${deposit.id}/refunds`, { amount: "5.00" }, { as: user(OWNER) })).status).toBe(201);
      await s.client.refunds.create({ payment_intent: deposit.paymentIntentId, amount: 300 });
      await settled(t);
      expect(await balanceOf(t, walletId)).toEqual({ posted: "32.00", held: "0.00", available: "32.00" });
      expect(await depositOf(t, deposit.id)).toMatchObject({ status: "partially_refunded", received: "40.00", refunded: "8.00" });
      expect((await journalsOf(t, deposit.id)).sort()).toEqual(["deposit", "deposit_refund", "deposit_refund_forced"]);
    } finally {
      s.standin.setDelivery("normal");
    }
    await verifyIsClean(t.api);
  });
});

describe("events in any order", () => {
  test("charge.refunded before payment_intent.succeeded still ends with the right balance", async () => {
    const walletId = await newWallet(t, OWNER);
    const made = await makeDeposit(t, walletId, "20.00", user(OWNER));
    const paymentIntentId = made.body.stripe.paymentIntentId as string;
    const s = stripeOf(t);
    const refund = await withWebhooksOff(async () => {
      await confirm(t, paymentIntentId, "pm_card_visa");
      // Refunded at Stripe directly, before Coffer heard the payment went through.
      const r = await s.client.refunds.create({ payment_intent: paymentIntentId, amount: 750 });
      await s.standin.idle();
      return r;
    });
    const chargeId = refund.charge as string;
    const [refunded] = eventsAbout(t, "charge.refunded", chargeId);
    const [succeeded] = eventsAbout(t, "payment_intent.succeeded", paymentIntentId);
    s.standin.resendEvent(refunded!.id);
    await settled(t);
    // The charge says it was paid: the deposit is credited, then the refund taken back.
    expect(await balanceOf(t, walletId)).toEqual({ posted: "12.50", held: "0.00", available: "12.50" });
    s.standin.resendEvent(succeeded!.id);
    await settled(t);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "12.50", held: "0.00", available: "12.50" });
    expect(await depositOf(t, made.body.id)).toMatchObject({ status: "partially_refunded", received: "20.00", refunded: "7.50" });
    expect((await journalsOf(t, made.body.id)).sort()).toEqual(["deposit", "deposit_refund_forced"]);
    await verifyIsClean(t.api);
  });

  test("a dispute closed before it was opened (lost) takes the money once", async () => {
    const walletId = await newWallet(t, OWNER);
    const deposit = await paidDeposit(t, walletId, "15.00", OWNER);
    const s = stripeOf(t);
    const chargeId = (await s.client.paymentIntents.retrieve(deposit.paymentIntentId)).latest_charge as string;
    const dispute = await withWebhooksOff(async () => {
      const d = s.standin.openDispute(chargeId);
      s.standin.closeDispute(d.id, "lost");
      await s.standin.idle();
      return d;
    });
    const [created] = eventsAbout(t, "charge.dispute.created", dispute.id);
    const [closed] = eventsAbout(t, "charge.dispute.closed", dispute.id);
    s.standin.resendEvent(closed!.id);
    await settled(t);
    s.standin.resendEvent(created!.id);
    await settled(t);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "0.00", held: "0.00", available: "0.00" });
    expect(await depositOf(t, deposit.id)).toMatchObject({ status: "charged_back", disputes: [expect.objectContaining({ status: "lost", amount: "15.00" })] });
    expect(await journalsOf(t, deposit.id)).toEqual(["deposit", "dispute"]);
  });
});

describe("a deposit Stripe knows and Coffer never recorded", () => {
  test("is taken up from its PaymentIntent when Stripe says it was paid, and the caller's retry answers it", async () => {
    // What a node that died right after Stripe answered leaves behind: a PaymentIntent made with
    // Coffer's metadata and idempotency key, and no deposit. The card holder pays it anyway.
    const walletId = await newWallet(t, OWNER);
    const key = `orphan-${crypto.randomUUID()}`;
    const depositId = idFromKey("deposit", scopeOf({ role: "user", sub: OWNER }), key);
    const s = stripeOf(t);
    const pi = await s.client.paymentIntents.create(
      { amount: 6_00, currency: "usd", automatic_payment_methods: { enabled: true, allow_redirects: "never" }, metadata: { coffer_deposit_id: depositId, coffer_wallet_id: walletId } },
      { idempotencyKey: paymentIntentKey(depositId) },
    );
    await confirm(t, pi.id, "pm_card_visa");
    await settled(t);
    expect((await balanceOf(t, walletId)).posted).toBe("6.00");
    expect(await depositOf(t, depositId)).toMatchObject({ status: "succeeded", received: "6.00", stripe: { paymentIntentId: pi.id } });

    const retried = await makeDeposit(t, walletId, "6.00", user(OWNER), key);
    expect({ status: retried.status, id: retried.body.id, pi: retried.body.stripe.paymentIntentId, state: retried.body.status }).toEqual({ status: 201, id: depositId, pi: pi.id, state: "succeeded" });
    await settled(t);
    expect(await journalsOf(t, depositId)).toEqual(["deposit"]);
  });
});

describe("what is not Coffer's, or not for it", () => {
  test("a PaymentIntent Coffer did not make is answered 200 and changes nothing", async () => {
    const s = stripeOf(t);
    const before = await footprint(t);
    const foreign = await s.client.paymentIntents.create({ amount: 5_000, currency: "usd", automatic_payment_methods: { enabled: true, allow_redirects: "never" } });
    await confirm(t, foreign.id, "pm_card_visa");
    await settled(t);
    const after = await footprint(t);
    expect({ ...after, events: before.events }).toEqual(before);
    const [row] = await t.node.db`select outcome from stripe_events where body::jsonb->'data'->'object'->>'id' = ${foreign.id}`;
    expect(row?.outcome).toStartWith("ignored");
  });

  test("an event of a type no rail handles is answered 200 and not even stored", async () => {
    const body = JSON.stringify({ id: `evt_${crypto.randomUUID().replaceAll("-", "")}`, object: "event", type: "customer.created", data: { object: { id: "cus_1", object: "customer" } } });
    const before = await footprint(t);
    const res = await postWebhook(t, body, sign(body));
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: { received: true } });
    expect(await footprint(t)).toEqual(before);
  });

  test("a payment reported in another currency than the wallet's, or for another wallet, credits nothing", async () => {
    const { walletId, depositId, body } = await paidUnheard("9.00");
    const event = JSON.parse(body);
    const inEuros = JSON.stringify({ ...event, id: `${event.id}eur`, data: { object: { ...event.data.object, currency: "eur" } } });
    const otherWallet = JSON.stringify({
      ...event,
      id: `${event.id}wal`,
      data: { object: { ...event.data.object, metadata: { ...event.data.object.metadata, coffer_wallet_id: crypto.randomUUID() } } },
    });
    for (const forged of [inEuros, otherWallet]) expect((await postWebhook(t, forged, sign(forged))).status).toBe(200);
    await settled(t);
    expect((await balanceOf(t, walletId)).posted).toBe("0.00");
    expect(await journalsOf(t, depositId)).toEqual([]);
    const outcomes = await t.node.db`select outcome from stripe_events where id in (${`${event.id}eur`}, ${`${event.id}wal`}) order by id`;
    expect(outcomes.map((r) => String(r.outcome).split(":")[0])).toEqual(["alert", "alert"]);
  });
});

describe("a node without Stripe", () => {
  test("answers the Stripe routes 503 STRIPE_NOT_CONFIGURED, and everything else as before", async () => {
    const bare = await startTestNode("nostripe", { COFFER_TEST_STRIPE: "off" });
    try {
      expect(bare.node.stripe).toBeUndefined();
      const walletId = await newWallet(bare, "someone");
      expectProblem(await bare.api("POST", `/v1/wallets/${walletId}/deposits`, { amount: "1.00" }), 503, "STRIPE_NOT_CONFIGURED");
      expectProblem(await bare.api("POST", `/v1/deposits/${crypto.randomUUID()}/refunds`, {}), 503, "STRIPE_NOT_CONFIGURED");
      const body = JSON.stringify({ id: "evt_1", type: "payment_intent.succeeded", data: { object: {} } });
      const hook = await fetch(`${bare.baseUrl}/v1/webhooks/stripe`, { method: "POST", body, headers: { "stripe-signature": sign(body, undefined, TEST_WEBHOOK_SECRET) } });
      expect({ status: hook.status, code: ((await hook.json()) as { code: string }).code }).toEqual({ status: 503, code: "STRIPE_NOT_CONFIGURED" });
      expectProblem(await bare.api("GET", `/v1/deposits/${crypto.randomUUID()}`), 404, "DEPOSIT_NOT_FOUND");
      expect((await bare.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "1.00" })).status).toBe(201);
    } finally {
      await bare.stop();
    }
  });
});
