import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { user } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { BANK } from "../support/operations";
import { balanceOf, chargeOf, depositOf, journalsOf, newWallet, paidDeposit, settled, stripeOf } from "./support";

/**
 * Chargebacks against a real node and the Stripe stand-in: a dispute takes its amount back at once,
 * from what is available first; what was already spent becomes the wallet's debt, which stops money
 * leaving it until credits have paid it. Won, the money returns; lost, it stays gone. The books
 * balance throughout (system:stripe_disputes holds what disputes took).
 */
let t: TestNode;
const OWNER = `disputed-${crypto.randomUUID().slice(0, 8)}`;
const AS_OWNER = user(OWNER);

beforeAll(async () => {
  t = await startTestNode("disputes");
});
afterAll(() => t.stop());

async function disputesBalance(): Promise<string> {
  const [row] = await t.node.db`select coalesce(sum(amount), 0)::text as total from postings where account = 'system:stripe_disputes'`;
  return row!.total;
}

describe("a dispute", () => {
  test("after the money was spent leaves a debt: withdrawals and transfers are refused, and the next credits pay the debt first", async () => {
    const walletId = await newWallet(t, OWNER);
    const other = await newWallet(t, `${OWNER}-friend`);
    const deposit = await paidDeposit(t, walletId, "100.00", OWNER);
    expect((await t.api("POST", `/v1/wallets/${walletId}/payments`, { amount: "80.00" }, { as: AS_OWNER })).status).toBe(201);

    stripeOf(t).standin.openDispute(await chargeOf(t, deposit.paymentIntentId));
    await settled(t);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "-80.00", held: "0.00", available: "0.00", debt: "80.00" });
    expect(await depositOf(t, deposit.id)).toMatchObject({ status: "disputed", disputed: "100.00" });

    expectProblem(await t.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount: "1.00", destination: BANK }, { as: AS_OWNER }), 409, "WALLET_IN_DEBT");
    expectProblem(await t.api("POST", "/v1/transfers", { fromWalletId: walletId, toWalletId: other, amount: "1.00" }, { as: AS_OWNER }), 409, "WALLET_IN_DEBT");
    expectProblem(await t.api("POST", `/v1/wallets/${walletId}/payments`, { amount: "1.00" }, { as: AS_OWNER }), 409, "WALLET_IN_DEBT");
    expectProblem(await t.api("POST", `/v1/deposits/${deposit.id}/refunds`, { amount: "1.00" }, { as: AS_OWNER }), 409, "INVALID_TRANSITION");

    // The next credits pay the debt first.
    expect((await t.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "50.00" })).status).toBe(201);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "-30.00", held: "0.00", available: "0.00", debt: "30.00" });
    const second = await paidDeposit(t, walletId, "50.00", OWNER);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "20.00", held: "0.00", available: "20.00" });
    expect((await t.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount: "20.00", destination: BANK }, { as: AS_OWNER })).status).toBe(201);
    expect(await journalsOf(t, second.id)).toEqual(["deposit"]);
    await verifyIsClean(t.api);
  });

  test("won: the money returns", async () => {
    const walletId = await newWallet(t, OWNER);
    const before = await disputesBalance();
    // This test card opens a dispute by itself right after the payment.
    const deposit = await paidDeposit(t, walletId, "25.00", OWNER, "pm_card_createDispute");
    expect(await balanceOf(t, walletId)).toEqual({ posted: "0.00", held: "0.00", available: "0.00" });
    const [dispute] = (await depositOf(t, deposit.id)).disputes;
    expect(dispute).toMatchObject({ status: "open", amount: "25.00" });
    expect(BigInt(await disputesBalance()) - BigInt(before)).toBe(2_500n);

    stripeOf(t).standin.closeDispute(dispute.id, "won");
    await settled(t);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "25.00", held: "0.00", available: "25.00" });
    expect(await depositOf(t, deposit.id)).toMatchObject({ status: "succeeded", disputed: "0.00", disputes: [expect.objectContaining({ status: "won" })] });
    expect(await journalsOf(t, deposit.id)).toEqual(["deposit", "dispute", "dispute_return"]);
    expect(await disputesBalance()).toBe(before);
    await verifyIsClean(t.api);
  });

  test("lost: the money stays gone", async () => {
    const walletId = await newWallet(t, OWNER);
    const deposit = await paidDeposit(t, walletId, "25.00", OWNER, "pm_card_createDispute");
    const [dispute] = (await depositOf(t, deposit.id)).disputes;
    stripeOf(t).standin.closeDispute(dispute.id, "lost");
    await settled(t);
    expect(await balanceOf(t, walletId)).toEqual({ posted: "0.00", held: "0.00", available: "0.00" });
    expect(await depositOf(t, deposit.id)).toMatchObject({ status: "charged_back", disputes: [expect.objectContaining({ status: "lost" })] });
    expect(await journalsOf(t, deposit.id)).toEqual(["deposit", "dispute"]);
    expectProblem(await t.api("POST", `/v1/deposits/${deposit.id}/refunds`, {}, { as: AS_OWNER }), 409, "REFUND_EXCEEDS_DEPOSIT");
    await verifyIsClean(t.api);
  });
});

describe("the verifier", () => {
  test("finds a wallet below zero that no dispute explains", async () => {
    const walletId = await newWallet(t, `${OWNER}-broken`);
    // A hand-made overdraft, as a bug might book it: balanced, but not a dispute.
    await t.node.db.begin(async (tx) => {
      const journalId = crypto.randomUUID();
      await tx`insert into movements (journal_id, kind, asset, wallet_id, debit, credit, amount, created_at)
        values (${journalId}, 'payment', 'USD', ${walletId}, ${walletId}, 'system:payments', 100, now())`;
      await tx`update wallets set posted = -100 where id = ${walletId}`;
    });
    const verify = await t.api("GET", "/admin/verify");
    expect(verify.body.mismatches).toContainEqual(expect.objectContaining({ kind: "negative_available", walletId, actual: "-100" }));
    // Put it back for the other suites' books.
    await t.node.db`update wallets set posted = 0 where id = ${walletId}`;
    await t.node.db`delete from movements where wallet_id = ${walletId}`;
  });
});
