import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { apiFor, type Api } from "../support/node";
import { startService, type ServiceProcess } from "../support/process";
import { startStripe, type StripeHarness } from "../support/stripe";
import { ADMIN } from "../support/auth";

/**
 * The real service (a subprocess) SIGKILLed exactly between Stripe's answer and the ledger write
 * that follows it, then started again on the same database: each effect happens once. The crash
 * is the process killing itself at a named point (src/crash.ts), armed only by
 * COFFER_TEST_CRASH_AT in this suite's first service.
 *
 * - a deposit: Stripe made the PaymentIntent, the deposit is not recorded; the caller retries.
 * - a deposit's credit: the deposit succeeded (committed), the wallet is not credited yet.
 * - a refund: Stripe made the refund, Coffer has not recorded Stripe's answer.
 * - a payout: Stripe made a withdrawal's payout, Coffer has not recorded Stripe's answer; or Stripe
 *   reported it paid (the event is stored), the wallet was not told yet.
 */
const SETTLE_TIMEOUT_MS = 20_000;

let db: TestDatabase;
let sql: postgres.Sql;
let stripe: StripeHarness;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase("stripekill");
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  // Webhooks to a killed service fail: retried soon, so the suite waits seconds, not minutes.
  stripe = await startStripe({ retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 200, timeoutMs: 2_000 } });
});
afterAll(async () => {
  for (const s of services) await s.kill();
  await stripe?.stop();
  await sql?.end({ timeout: 5 });
  await db?.drop();
});

/** A service on the suite's database, Stripe's webhooks pointed at it; armed to die at `crashAt` if given. */
async function service(crashAt?: string): Promise<{ svc: ServiceProcess; api: Api }> {
  const svc = await startService(db.url, { ...stripe.env, ...(crashAt ? { COFFER_TEST_CRASH_AT: crashAt } : {}) });
  services.push(svc);
  stripe.connect(svc.baseUrl);
  return { svc, api: apiFor(svc.baseUrl) };
}

/** The process died by SIGKILL (its own, at the crash point). */
async function killedItself(svc: ServiceProcess): Promise<void> {
  await svc.proc.exited;
  expect(svc.proc.signalCode).toBe("SIGKILL");
}

/**
 * Until `done` holds, with Stripe quiet: the service is another process, so there is no event to
 * await; this asks its database, a bounded number of times.
 */
async function until(done: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await stripe.standin.idle(SETTLE_TIMEOUT_MS);
    if (await done()) return;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const settledDb = async () => {
  const [row] = await sql`select (select count(*) from stripe_events where processed_at is null)::int + (select count(*) from outbox where deposit_pending or payout_pending)::int as n`;
  return row!.n === 0;
};

async function intentsOfWallet(walletId: string): Promise<string[]> {
  const found: string[] = [];
  for await (const pi of stripe.client.paymentIntents.list({ limit: 100 })) if (pi.metadata?.coffer_wallet_id === walletId) found.push(pi.id);
  return found;
}

async function posted(walletId: string): Promise<string> {
  const [row] = await sql`select posted::text from wallets where id = ${walletId}`;
  return row!.posted;
}

async function journalKinds(walletId: string): Promise<string[]> {
  const rows = await sql`select kind from journals where wallet_id = ${walletId} order by created_at`;
  return rows.map((r) => r.kind as string);
}

async function newWallet(api: Api): Promise<string> {
  const res = await api("POST", "/v1/wallets", { ownerId: `killed-${crypto.randomUUID().slice(0, 8)}`, asset: "USD" });
  expect(res.status).toBe(201);
  return res.body.id;
}

describe("SIGKILL between Stripe's answer and the ledger", () => {
  test("a deposit whose PaymentIntent Stripe made is recorded once when the caller retries, and credited once", async () => {
    const first = await service("deposit.after_payment_intent");
    const walletId = await newWallet(first.api);
    const key = `killed-deposit-${crypto.randomUUID()}`;
    await expect(first.api("POST", `/v1/wallets/${walletId}/deposits`, { amount: "42.00" }, { key, as: ADMIN })).rejects.toThrow();
    await killedItself(first.svc);
    expect(await intentsOfWallet(walletId)).toHaveLength(1);
    expect((await sql`select count(*)::int as n from deposits where wallet_id = ${walletId}`)[0]!.n).toBe(0);

    const second = await service();
    const retried = await second.api("POST", `/v1/wallets/${walletId}/deposits`, { amount: "42.00" }, { key, as: ADMIN });
    expect(retried.status).toBe(201);
    expect(await intentsOfWallet(walletId)).toEqual([retried.body.stripe.paymentIntentId]);
    await stripe.client.paymentIntents.confirm(retried.body.stripe.paymentIntentId, { payment_method: "pm_card_visa" });
    await until(async () => (await posted(walletId)) === "4200" && (await settledDb()), "the deposit's credit");
    expect(await journalKinds(walletId)).toEqual(["deposit"]);
    await second.svc.kill();
  });

  test("a deposit that succeeded but was not credited yet is credited once after the restart", async () => {
    const first = await service("deposit.before_credit");
    const walletId = await newWallet(first.api);
    const made = await first.api("POST", `/v1/wallets/${walletId}/deposits`, { amount: "17.50" });
    expect(made.status).toBe(201);
    await stripe.client.paymentIntents.confirm(made.body.stripe.paymentIntentId, { payment_method: "pm_card_visa" });
    await killedItself(first.svc);
    const [deposit] = await sql`select status from deposits where id = ${made.body.id}`;
    expect({ deposit: deposit!.status, posted: await posted(walletId) }).toEqual({ deposit: "succeeded", posted: "0" });

    const second = await service();
    await until(async () => (await posted(walletId)) === "1750" && (await settledDb()), "the credit after the restart");
    // Stripe may deliver the event again (its first delivery died with the service): still once.
    const [event] = stripe.standin.events("payment_intent.succeeded").filter((e) => (e.data.object as { id: string }).id === made.body.stripe.paymentIntentId);
    stripe.standin.resendEvent(event!.id);
    await until(settledDb, "the resent event");
    expect(await posted(walletId)).toBe("1750");
    expect(await journalKinds(walletId)).toEqual(["deposit"]);
    await second.svc.kill();
  });

  test("a refund Stripe made but Coffer had not recorded is finished once after the restart: one refund, one debit", async () => {
    const first = await service("refund.after_stripe");
    const walletId = await newWallet(first.api);
    const made = await first.api("POST", `/v1/wallets/${walletId}/deposits`, { amount: "30.00" });
    const paymentIntentId = made.body.stripe.paymentIntentId as string;
    await stripe.client.paymentIntents.confirm(paymentIntentId, { payment_method: "pm_card_visa" });
    await until(async () => (await posted(walletId)) === "3000" && (await settledDb()), "the deposit's credit");

    await expect(first.api("POST", `/v1/deposits/${made.body.id}/refunds`, { amount: "12.00" })).rejects.toThrow();
    await killedItself(first.svc);
    const refundsAtStripe = async () => (await stripe.client.refunds.list({ payment_intent: paymentIntentId })).data.map((r) => r.amount);
    expect(await refundsAtStripe()).toEqual([1200]);
    const [refund] = await sql`select status from deposit_refunds where deposit_id = ${made.body.id}`;
    // The wallet paid the refund back before Stripe was asked; Stripe's answer was never recorded.
    expect({ refund: refund!.status, posted: await posted(walletId) }).toEqual({ refund: "requested", posted: "1800" });

    const second = await service();
    await until(async () => (await sql`select status from deposit_refunds where deposit_id = ${made.body.id}`)[0]!.status === "succeeded" && (await settledDb()), "the refund's end");
    expect(await refundsAtStripe()).toEqual([1200]);
    expect(await posted(walletId)).toBe("1800");
    expect(await journalKinds(walletId)).toEqual(["deposit", "deposit_refund"]);
    const verify = await second.api("GET", "/admin/verify");
    expect(verify.body).toEqual({ ok: true, mismatches: [] });
    await second.svc.kill();
  });

  test("a payout Stripe made but Coffer had not recorded is sent again under its key after the restart: one payout at Stripe, one completion", async () => {
    const first = await service("payout.after_stripe");
    const walletId = await newWallet(first.api);
    expect((await first.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "80.00" })).status).toBe(201);
    // The worker takes the withdrawal up as soon as it is committed: the answer may or may not get out first.
    await first.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount: "30.00", destination: { type: "bank_token", token: "btok_killed0payout0after" } }).catch(() => undefined);
    await killedItself(first.svc);
    const [w] = await sql`select id, status from withdrawals where wallet_id = ${walletId}`;
    expect(w!.status).toBe("processing");
    expect(await payoutsOf(w!.id)).toHaveLength(1);
    const [row] = await sql`select status, stripe_id from withdrawal_payouts where withdrawal_id = ${w!.id}`;
    expect({ ...row }).toEqual({ status: "sending", stripe_id: null });

    const second = await service();
    await until(async () => (await withdrawalStatus(w!.id)) === "completed" && (await settledDb()), "the payout's completion after the restart");
    const [payout, ...more] = await payoutsOf(w!.id);
    expect(more).toEqual([]);
    expect(payout!.status).toBe("paid");
    // Its events may come again (the first deliveries died with the service): still once.
    for (const e of stripe.standin.events("payout.paid").filter((e) => (e.data.object as { id: string }).id === payout!.id)) stripe.standin.resendEvent(e.id);
    await until(settledDb, "the resent events");
    expect(await posted(walletId)).toBe("5000");
    expect(await journalKinds(walletId)).toEqual(["credit", "withdrawal"]);
    expect((await second.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
    await second.svc.kill();
  });

  test("a payout Stripe reported paid, killed before the wallet heard of it, is completed once after the restart", async () => {
    const first = await service("payout.before_complete");
    const walletId = await newWallet(first.api);
    expect((await first.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "80.00" })).status).toBe(201);
    await first.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount: "25.00", destination: { type: "bank_token", token: "btok_killed0payout0paid0" } }).catch(() => undefined);
    await killedItself(first.svc);
    const [w] = await sql`select id, status from withdrawals where wallet_id = ${walletId}`;
    expect(w!.status).toBe("processing");
    const [event] = await sql`select processed_at from stripe_events where type = 'payout.paid' and body like ${`%${w!.id}%`}`;
    expect(event!.processed_at).toBeNull();

    const second = await service();
    await until(async () => (await withdrawalStatus(w!.id)) === "completed" && (await settledDb()), "the payout's completion after the restart");
    expect(await payoutsOf(w!.id)).toHaveLength(1);
    expect(await posted(walletId)).toBe("5500");
    expect(await journalKinds(walletId)).toEqual(["credit", "withdrawal"]);
    expect((await second.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
    await second.svc.kill();
  });
});

async function payoutsOf(withdrawalId: string) {
  const found = [];
  for await (const po of stripe.client.payouts.list({ limit: 100 })) if (po.metadata?.coffer_withdrawal_id === withdrawalId) found.push(po);
  return found;
}

async function withdrawalStatus(id: string): Promise<string | undefined> {
  return (await sql`select status from withdrawals where id = ${id}`)[0]?.status;
}
