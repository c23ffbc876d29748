import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { user } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { chargeOf, confirm, makeDeposit, newWallet, paidDeposit, settled, stripeOf } from "./support";

/**
 * Reconciliation (`GET /admin/reconciliation`, `bun run coffer reconcile`) against a real node and
 * the Stripe stand-in: clean after a mix of deposits, refunds, disputes, payouts and transfers; a
 * difference planted on either side is reported, and the CLI's exit code says so.
 */
const ROOT = new URL("../..", import.meta.url).pathname;
let t: TestNode;
const OWNER = `reconciled-${crypto.randomUUID().slice(0, 8)}`;
const AS_OWNER = user(OWNER);
/** What the mix left behind, for planting differences. */
const made: { paidDeposit?: string; paidIntent?: string; refundId?: string; pendingDeposit?: string } = {};

beforeAll(async () => {
  t = await startTestNode("reconcile");
});
afterAll(() => t.stop());

async function quiet(): Promise<void> {
  await settled(t);
  expect(await t.node.payouts!.idle(15_000)).toBe(true);
  await settled(t);
}

async function coffer(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["bun", "run", "coffer", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...stripeOf(t).env, DATABASE_URL: t.db.url, LOG_LEVEL: "warn" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const reconciliation = (query = "") => t.api("GET", `/admin/reconciliation${query}`);

describe("after a mix of deposits, refunds, disputes, payouts and transfers", () => {
  test("Stripe and the ledger agree: no difference, and the CLI exits 0", async () => {
    const walletId = await newWallet(t, OWNER);
    const a = await paidDeposit(t, walletId, "50.00", OWNER);
    Object.assign(made, { paidDeposit: a.id, paidIntent: a.paymentIntentId });
    const b = await paidDeposit(t, walletId, "30.00", OWNER);
    const refund = await t.api("POST", `/v1/deposits/${b.id}/refunds`, { amount: "10.00" }, { as: AS_OWNER });
    expect(refund.status).toBe(201);
    made.refundId = refund.body.id;
    const won = await paidDeposit(t, walletId, "20.00", OWNER, "pm_card_createDispute");
    const lost = await paidDeposit(t, walletId, "12.00", OWNER, "pm_card_createDispute");
    for (const [deposit, outcome] of [[won, "won"], [lost, "lost"]] as const) {
      const charge = await chargeOf(t, deposit.paymentIntentId);
      const [dispute] = (await stripeOf(t).client.disputes.list({ charge, limit: 1 })).data;
      stripeOf(t).standin.closeDispute(dispute!.id, outcome);
    }
    const declined = await makeDeposit(t, walletId, "9.00", AS_OWNER);
    await confirm(t, declined.body.stripe.paymentIntentId, "pm_card_chargeDeclined");
    made.pendingDeposit = (await makeDeposit(t, walletId, "8.00", AS_OWNER)).body.id;
    await quiet();
    for (const destination of [
      { type: "bank_token", token: "btok_reconcile0paid00001" },
      { type: "bank_token", token: "btok_reconcile0noAccount" },
      { type: "stripe_account", account: "acct_reconcile0connected" },
    ]) {
      const res = await t.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount: "5.00", destination }, { as: AS_OWNER });
      expect(res.status).toBe(201);
    }
    await quiet();
    const statuses = (await t.node.db`select status from withdrawals order by status`).map((r) => r.status);
    expect(statuses).toEqual(["completed", "completed", "failed"]);

    const res = await reconciliation();
    expect(res.status).toBe(200);
    expect(res.body.differences).toEqual([]);
    expect(res.body).toMatchObject({
      ok: true,
      summary: { since: null, stripe: { paymentIntents: 6, refunds: 1, disputes: 2, payouts: 2, transfers: 1 }, coffer: { deposits: 6, withdrawals: 3 }, inFlight: 0, differences: 0, truncated: false, totalsChecked: true },
    });

    const run = await coffer("reconcile");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, differences: [] });
    expect(run.stderr).toContain("Stripe and the ledger agree");
  });
});

describe("a difference planted on either side", () => {
  test("is reported: Stripe's refund and payout Coffer never booked, Coffer's refund amount and a PaymentIntent Stripe does not have; the CLI exits 1", async () => {
    const stripe = stripeOf(t);
    // Stripe's side: a refund made at Stripe directly while its webhook was lost, and a payout
    // naming a withdrawal Coffer never paid out.
    stripe.standin.setWebhook(undefined);
    let stripeRefund: string;
    let stripePayout: string;
    try {
      stripeRefund = (await stripe.client.refunds.create({ payment_intent: made.paidIntent!, amount: 500 })).id;
      stripePayout = (await stripe.client.payouts.create({ amount: 700, currency: "usd", destination: "ba_planted0payout000", metadata: { coffer_withdrawal_id: crypto.randomUUID() } })).id;
    } finally {
      stripe.connect(t.baseUrl);
    }
    // Coffer's side: a refund's amount changed, and a deposit naming a PaymentIntent Stripe never made.
    await t.node.db`update deposit_refunds set amount = amount + 1 where id = ${made.refundId!}`;
    await t.node.db`update deposits set payment_intent_id = 'pi_planted0missing' where id = ${made.pendingDeposit!}`;

    const res = await reconciliation();
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    const found = (res.body.differences as { kind: string; object: string; stripeId?: string; cofferId?: string; field?: string }[]).map((d) => `${d.kind} ${d.object} ${d.stripeId ?? d.cofferId}${d.field ? ` ${d.field}` : ""}`);
    expect(found.sort()).toEqual(
      [
        `missing_in_coffer refund ${stripeRefund!}`,
        `missing_in_coffer payout ${stripePayout!}`,
        `amount_differs refund ${(await t.node.db`select stripe_refund_id from deposit_refunds where id = ${made.refundId!}`)[0]!.stripe_refund_id} amount`,
        "missing_at_stripe payment_intent pi_planted0missing",
        // The refund Coffer never booked leaves its deposit's clearing postings short of Stripe's word, and the account's total with them.
        `ledger_differs payment_intent ${made.paidIntent!} system:stripe_clearing`,
        "ledger_differs account system:stripe_clearing total",
      ].sort(),
    );
    expect(res.body.summary.differences).toBe(6);

    const run = await coffer("reconcile");
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout).summary.differences).toBe(6);
    expect(run.stderr).toContain("STRIPE AND THE LEDGER DISAGREE");
    expect(run.stderr).toMatch(/reconcile: paymentIntents · listed from Stripe/);
  });

  test("--since leaves out what was made before it; a bad --since exits 2 and GET answers 400", async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const later = await coffer("reconcile", "--since", tomorrow);
    expect(later.code).toBe(0);
    expect(JSON.parse(later.stdout).summary).toMatchObject({ since: `${tomorrow}T00:00:00.000Z`, totalsChecked: false, differences: 0 });
    const bad = await coffer("reconcile", "--since", "last tuesday");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("usage: bun run coffer reconcile");
    expectProblem(await reconciliation("?since=yesterday"), 400, "VALIDATION_FAILED");
    expect((await reconciliation(`?since=${tomorrow}`)).body).toMatchObject({ ok: true });
  });

  test("only admins and auditors may ask", async () => {
    expectProblem(await t.api("GET", "/admin/reconciliation", undefined, { as: AS_OWNER }), 403, "FORBIDDEN");
    expect((await t.api("GET", "/admin/reconciliation", undefined, { as: { sub: "aud", role: "auditor" } })).status).toBe(200);
  });
});
