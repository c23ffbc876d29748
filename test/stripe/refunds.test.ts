import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { user } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { balanceOf, depositOf, footprint, journalsOf, newWallet, paidDeposit, settled, stripeOf } from "./support";

/**
 * POST /v1/deposits/:depositId/refunds against a real node and the Stripe stand-in: the wallet
 * pays the money back first, Stripe is asked under the refund's own key, and refunds never add up
 * to more than was received, however they are asked for.
 */
let t: TestNode;
const OWNER = `refunder-${crypto.randomUUID().slice(0, 8)}`;
const AS_OWNER = user(OWNER);

beforeAll(async () => {
  t = await startTestNode("refunds");
});
afterAll(() => t.stop());

const refund = (depositId: string, body: Record<string, unknown> = {}, key?: string) => t.api("POST", `/v1/deposits/${depositId}/refunds`, body, { as: AS_OWNER, ...(key ? { key } : {}) });

/** What Stripe refunded of a PaymentIntent, in minor units, refund by refund. */
async function refundedAtStripe(paymentIntentId: string): Promise<number[]> {
  const amounts: number[] = [];
  for await (const r of stripeOf(t).client.refunds.list({ payment_intent: paymentIntentId, limit: 100 })) if (r.status !== "failed" && r.status !== "canceled") amounts.push(r.amount);
  return amounts.sort((a, b) => a - b);
}

async function funded(amount: string) {
  const walletId = await newWallet(t, OWNER);
  return { walletId, ...(await paidDeposit(t, walletId, amount, OWNER)) };
}

describe("a refund", () => {
  test("debits the wallet, is made at Stripe, and leaves the deposit partially refunded", async () => {
    const d = await funded("10.00");
    const res = await refund(d.id, { amount: "4.00" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ depositId: d.id, walletId: d.walletId, amount: "4.00", status: "succeeded", external: false });
    await settled(t);
    expect((await balanceOf(t, d.walletId)).posted).toBe("6.00");
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual([400]);
    expect(await depositOf(t, d.id)).toMatchObject({ status: "partially_refunded", refunded: "4.00" });
  });

  test("without an amount refunds all that is left", async () => {
    const d = await funded("10.00");
    expect((await refund(d.id, { amount: "2.50" })).status).toBe(201);
    const rest = await refund(d.id);
    expect(rest.body).toMatchObject({ amount: "7.50", status: "succeeded" });
    await settled(t);
    expect(await depositOf(t, d.id)).toMatchObject({ status: "refunded", refunded: "10.00" });
    expect((await balanceOf(t, d.walletId)).posted).toBe("0.00");
  });

  test("retried with the same key is one refund at Stripe and one debit", async () => {
    const d = await funded("10.00");
    const key = `refund-${crypto.randomUUID()}`;
    const answers = await Promise.all(Array.from({ length: 5 }, () => refund(d.id, { amount: "3.00" }, key)));
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill(201));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    await settled(t);
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual([300]);
    expect(await journalsOf(t, d.id)).toEqual(["deposit", "deposit_refund"]);
  });
});

describe("never more than was received", () => {
  test("a refund larger than the deposit is 409 REFUND_EXCEEDS_DEPOSIT and moves nothing", async () => {
    const d = await funded("10.00");
    const before = await footprint(t);
    expectProblem(await refund(d.id, { amount: "10.01" }), 409, "REFUND_EXCEEDS_DEPOSIT");
    const after = await footprint(t);
    expect({ ...after, keys: before.keys }).toEqual(before);
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual([]);
  });

  test("a second full refund is refused", async () => {
    const d = await funded("10.00");
    expect((await refund(d.id)).status).toBe(201);
    expectProblem(await refund(d.id), 409, "REFUND_EXCEEDS_DEPOSIT");
    expectProblem(await refund(d.id, { amount: "0.01" }), 409, "REFUND_EXCEEDS_DEPOSIT");
    await settled(t);
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual([1_000]);
    expect((await balanceOf(t, d.walletId)).posted).toBe("0.00");
  });

  test("ten partial refunds racing add up to no more than was received", async () => {
    const d = await funded("10.00");
    const answers = await Promise.all(Array.from({ length: 10 }, () => refund(d.id, { amount: "1.50" })));
    const statuses = answers.map((a) => (a.status === 201 ? "refunded" : a.body.code)).sort();
    expect(statuses).toEqual([...Array(6).fill("refunded"), ...Array(4).fill("REFUND_EXCEEDS_DEPOSIT")].sort());
    await settled(t);
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual(Array(6).fill(150));
    expect((await balanceOf(t, d.walletId)).posted).toBe("1.00");
    expect(await depositOf(t, d.id)).toMatchObject({ refunded: "9.00", status: "partially_refunded" });
    await verifyIsClean(t.api);
  });

  test("money already spent is 409 INSUFFICIENT_FUNDS, and Stripe never hears of the refund", async () => {
    const d = await funded("10.00");
    expect((await t.api("POST", `/v1/wallets/${d.walletId}/payments`, { amount: "8.00" }, { as: AS_OWNER })).status).toBe(201);
    expectProblem(await refund(d.id, { amount: "5.00" }), 409, "INSUFFICIENT_FUNDS");
    await settled(t);
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual([]);
    expect((await balanceOf(t, d.walletId)).posted).toBe("2.00");
    // The canceled refund frees its amount: what the wallet can pay back may still be refunded.
    expect((await refund(d.id, { amount: "2.00" })).status).toBe(201);
    await settled(t);
    expect(await depositOf(t, d.id)).toMatchObject({ refunded: "2.00", refunds: [expect.objectContaining({ status: "canceled", reason: "INSUFFICIENT_FUNDS" }), expect.objectContaining({ status: "succeeded" })] });
  });
});

describe("when Stripe says no, or nothing", () => {
  test("a refund that fails at Stripe gives the money back to the wallet", async () => {
    const d = { walletId: await newWallet(t, OWNER) } as { walletId: string; id: string; paymentIntentId: string };
    Object.assign(d, await paidDeposit(t, d.walletId, "10.00", OWNER, "pm_card_refundFail"));
    expect((await refund(d.id, { amount: "6.00" })).status).toBe(201);
    await settled(t);
    expect(await depositOf(t, d.id)).toMatchObject({ refunded: "0.00", status: "succeeded", refunds: [expect.objectContaining({ status: "failed" })] });
    expect((await balanceOf(t, d.walletId)).posted).toBe("10.00");
    expect(await journalsOf(t, d.id)).toEqual(["deposit", "deposit_refund", "deposit_refund_return"]);
    await verifyIsClean(t.api);
  });

  test("Stripe down while refunding: the wallet has paid, the refund waits, and is made once Stripe answers", async () => {
    const d = await funded("10.00");
    stripeOf(t).standin.injectFault({ mode: "500", path: "/v1/refunds", method: "POST", count: 1 });
    const res = await refund(d.id, { amount: "4.00" });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("requested");
    expect((await balanceOf(t, d.walletId)).posted).toBe("6.00");
    await settled(t);
    expect(await refundedAtStripe(d.paymentIntentId)).toEqual([400]);
    expect(await depositOf(t, d.id)).toMatchObject({ refunded: "4.00", refunds: [expect.objectContaining({ status: "succeeded" })] });
  });

  test("a refund Stripe refuses outright (already refunded there) fails and gives the money back", async () => {
    const d = await funded("10.00");
    // Refunded in full at Stripe directly, before Coffer heard of it: Stripe refuses Coffer's.
    stripeOf(t).standin.setWebhook(undefined);
    try {
      await stripeOf(t).client.refunds.create({ payment_intent: d.paymentIntentId });
      const res = await refund(d.id, { amount: "1.00" });
      expect(res.body).toMatchObject({ status: "failed" });
      await settled(t);
      expect((await balanceOf(t, d.walletId)).posted).toBe("10.00");
    } finally {
      stripeOf(t).connect(t.baseUrl);
    }
    // (the dashboard refund's events were kept at Stripe; nothing more to settle here)
    await verifyIsClean(t.api);
  });
});
