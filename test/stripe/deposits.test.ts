import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromStripeAmount, toStripeAmount } from "../../src/integrations/stripe/money";
import type { FaultSpec } from "../../src/integrations/stripe/standin";
import { user } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { balanceOf, confirm, depositOf, footprint, journalsOf, makeDeposit, newWallet, paidDeposit, settled, stripeOf } from "./support";

/**
 * POST /v1/wallets/:walletId/deposits and GET /v1/deposits/:depositId against a real node and the
 * Stripe stand-in: a PaymentIntent for exactly the amount, one per idempotency key whatever Stripe
 * does meanwhile, and the wallet credited only when Stripe says the money arrived.
 */
let t: TestNode;
const OWNER = `depositor-${crypto.randomUUID().slice(0, 8)}`;
const AS_OWNER = user(OWNER);

beforeAll(async () => {
  // A short Stripe timeout, so "Stripe does not answer" is a test of seconds.
  t = await startTestNode("deposits", { STRIPE_TIMEOUT_MS: "1500" });
});
afterAll(() => t.stop());

/** The PaymentIntents at Stripe made for a deposit (by the metadata Coffer puts on them). */
async function intentsFor(depositId: string): Promise<string[]> {
  const found: string[] = [];
  for await (const pi of stripeOf(t).client.paymentIntents.list({ limit: 100 })) if (pi.metadata?.coffer_deposit_id === depositId) found.push(pi.id);
  return found;
}

describe("a card deposit", () => {
  test("answers its PaymentIntent, and the wallet is credited only once Stripe says the money arrived", async () => {
    const walletId = await newWallet(t, OWNER);
    const made = await makeDeposit(t, walletId, "12.34", AS_OWNER);
    expect(made.status).toBe(201);
    const { id: depositId, stripe } = made.body;
    expect(made.body).toEqual({ id: depositId, walletId, asset: "USD", amount: "12.34", status: "pending", stripe, createdAt: made.body.createdAt });
    expect(stripe.paymentIntentId).toStartWith("pi_");
    expect(stripe.clientSecret).toStartWith(`${stripe.paymentIntentId}_secret_`);
    const pi = await stripeOf(t).client.paymentIntents.retrieve(stripe.paymentIntentId);
    expect({ amount: pi.amount, currency: pi.currency, metadata: pi.metadata }).toEqual({ amount: 1234, currency: "usd", metadata: { coffer_deposit_id: depositId, coffer_wallet_id: walletId } });
    await settled(t);
    expect((await balanceOf(t, walletId)).posted).toBe("0.00");

    await confirm(t, pi.id, "pm_card_visa");
    await settled(t);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "12.34", held: "0.00", available: "12.34" });
    expect(await depositOf(t, depositId)).toMatchObject({ status: "succeeded", received: "12.34", refunded: "0.00", stripe: { paymentIntentId: pi.id } });
    // In the wallet's transactions: a credit whose source is the deposit.
    const page = await t.api("GET", `/v1/wallets/${walletId}/transactions?limit=10`, undefined, { as: AS_OWNER });
    expect(page.body.items).toEqual([expect.objectContaining({ kind: "deposit", amount: "12.34", source: { kind: "deposit", id: depositId } })]);
    await verifyIsClean(t.api);
  });

  test("a retry with the same key answers the same deposit and makes no second PaymentIntent", async () => {
    const walletId = await newWallet(t, OWNER);
    const key = `deposit-${crypto.randomUUID()}`;
    const first = await makeDeposit(t, walletId, "5.00", AS_OWNER, key);
    const again = await makeDeposit(t, walletId, "5.00", AS_OWNER, key);
    expect({ status: again.status, body: again.body }).toEqual({ status: first.status, body: first.body });
    expect(await intentsFor(first.body.id)).toEqual([first.body.stripe.paymentIntentId]);
    expectProblem(await makeDeposit(t, walletId, "6.00", AS_OWNER, key), 422, "IDEMPOTENCY_CONFLICT");
    expect(await intentsFor(first.body.id)).toHaveLength(1);
  });

  test("a declined card fails the deposit and credits nothing", async () => {
    const walletId = await newWallet(t, OWNER);
    const made = await makeDeposit(t, walletId, "8.00", AS_OWNER);
    const declined = await confirm(t, made.body.stripe.paymentIntentId, "pm_card_chargeDeclined");
    expect(declined).toBeInstanceOf(Error);
    await settled(t);
    expect(await depositOf(t, made.body.id)).toMatchObject({ status: "failed", received: "0.00", failureReason: expect.any(String) });
    expect((await balanceOf(t, walletId)).posted).toBe("0.00");
    expect(await journalsOf(t, made.body.id)).toEqual([]);
    expectProblem(await t.api("POST", `/v1/deposits/${made.body.id}/refunds`, {}, { as: AS_OWNER }), 409, "INVALID_TRANSITION");
  });

  test("a crypto wallet takes no card deposit: 400 ASSET_NOT_SUPPORTED, and Stripe is not asked", async () => {
    const walletId = await newWallet(t, OWNER, "BTC");
    const before = stripeOf(t).standin.events("payment_intent.created").length;
    expectProblem(await makeDeposit(t, walletId, "0.001", AS_OWNER), 400, "ASSET_NOT_SUPPORTED");
    expect(stripeOf(t).standin.events("payment_intent.created").length).toBe(before);
  });

  test("another user's wallet answers as a missing one, and a frozen wallet takes no deposit", async () => {
    const walletId = await newWallet(t, OWNER);
    expectProblem(await makeDeposit(t, walletId, "1.00", user("someone-else")), 404, "WALLET_NOT_FOUND");
    await t.api("POST", `/v1/wallets/${walletId}/freeze`);
    expectProblem(await makeDeposit(t, walletId, "1.00", AS_OWNER), 409, "WALLET_FROZEN");
  });
});

describe("Stripe failing while a deposit is made", () => {
  for (const [what, fault] of <[string, FaultSpec][]>[
    ["answering 500", { mode: "500" }],
    // (count 2: Bun's HTTP client sends a request again, once, when a reused connection drops.)
    ["dropping the connection", { mode: "close", count: 2 }],
    ["not answering in time", { mode: "hang", delayMs: 3_000 }],
    ["making the PaymentIntent and losing its answer", { mode: "close", when: "after", count: 2 }],
  ]) {
    test(`Stripe ${what}: 503 with nothing half-made, and the retry with the same key makes exactly one PaymentIntent`, async () => {
      const walletId = await newWallet(t, OWNER);
      const key = `faulty-${crypto.randomUUID()}`;
      const before = await footprint(t);
      stripeOf(t).standin.injectFault({ count: 1, ...fault, path: "/v1/payment_intents", method: "POST" });
      expectProblem(await makeDeposit(t, walletId, "7.77", AS_OWNER, key), 503, "UNAVAILABLE");
      expect(await footprint(t)).toEqual(before);

      const retried = await makeDeposit(t, walletId, "7.77", AS_OWNER, key);
      expect(retried.status).toBe(201);
      expect(await intentsFor(retried.body.id)).toEqual([retried.body.stripe.paymentIntentId]);
      await confirm(t, retried.body.stripe.paymentIntentId, "pm_card_visa");
      await settled(t);
      expect((await balanceOf(t, walletId)).posted).toBe("7.77");
    });
  }
});

describe("amounts", () => {
  test("Stripe's minor units are the asset's minor units: KES, USD and EUR map exactly, both ways", async () => {
    for (const [asset, amount, minor] of [
      ["KES", "1500.55", 150_055],
      ["USD", "0.99", 99],
      ["EUR", "99999.99", 9_999_999],
      ["USD", "999999.99", 99_999_999],
    ] as const) {
      const walletId = await newWallet(t, OWNER, asset);
      const made = await makeDeposit(t, walletId, amount, AS_OWNER);
      expect(made.status).toBe(201);
      const pi = await stripeOf(t).client.paymentIntents.retrieve(made.body.stripe.paymentIntentId);
      expect({ asset, amount: pi.amount, currency: pi.currency }).toEqual({ asset, amount: minor, currency: asset.toLowerCase() });
      await confirm(t, pi.id, "pm_card_visa");
      await settled(t);
      expect({ asset, posted: (await balanceOf(t, walletId)).posted }).toEqual({ asset, posted: amount });
      const [row] = await t.node.db`select received::text from deposits where id = ${made.body.id}`;
      expect(row!.received).toBe(String(minor));
    }
    await verifyIsClean(t.api);
  });

  test("an amount Stripe will not charge (over its maximum) is 422 STRIPE_REFUSED, and nothing is recorded", async () => {
    const walletId = await newWallet(t, OWNER);
    const before = await footprint(t);
    expectProblem(await makeDeposit(t, walletId, "12345678.91", AS_OWNER), 422, "STRIPE_REFUSED");
    expect(await footprint(t)).toEqual(before);
  });

  test("more decimals than the asset has is a 400, never a rounding, and Stripe is not asked", async () => {
    const walletId = await newWallet(t, OWNER, "KES");
    const before = stripeOf(t).standin.events("payment_intent.created").length;
    for (const amount of ["1.001", "0.000", "-1.00", "1e3", "0x10"]) expectProblem(await makeDeposit(t, walletId, amount, AS_OWNER), 400, "VALIDATION_FAILED");
    expect(stripeOf(t).standin.events("payment_intent.created").length).toBe(before);
  });

  test("an amount is never a float on its way to or from Stripe", () => {
    expect(toStripeAmount(1_234n)).toBe(1_234);
    expect(() => toStripeAmount(2n ** 53n)).toThrow(RangeError);
    expect(() => toStripeAmount(0n)).toThrow(RangeError);
    expect(fromStripeAmount(1_234)).toBe(1_234n);
    for (const bad of [12.5, -1, Number.MAX_SAFE_INTEGER + 1, "1234", null, Number.NaN]) expect(fromStripeAmount(bad)).toBeUndefined();
  });

  test("a PaymentIntent Stripe says received a fraction of a minor unit credits nothing", async () => {
    const walletId = await newWallet(t, OWNER);
    const deposit = await paidDeposit(t, walletId, "2.00", OWNER);
    const [event] = stripeOf(t).standin.events("payment_intent.succeeded").filter((e) => (e.data.object as { id: string }).id === deposit.paymentIntentId);
    // Signed as Stripe would sign it: the amount is what is wrong, not the signature.
    const { sign, postWebhook } = await import("./support");
    const other = await newWallet(t, OWNER);
    const again = await makeDeposit(t, other, "2.00", AS_OWNER);
    const forged = JSON.stringify({
      ...event,
      id: `${event!.id}frac`,
      data: { object: { ...(event!.data.object as object), id: again.body.stripe.paymentIntentId, amount_received: 150.5, metadata: { coffer_deposit_id: again.body.id, coffer_wallet_id: other } } },
    });
    expect((await postWebhook(t, forged, sign(forged))).status).toBe(200);
    await settled(t);
    expect((await balanceOf(t, other)).posted).toBe("0.00");
    expect((await depositOf(t, again.body.id)).status).toBe("pending");
  });
});
