import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import type Stripe from "stripe";
import { user, type As } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { startStripe, type StripeHarness } from "../support/stripe";

/**
 * Bank payouts through Stripe against a real node, a real Postgres and the Stripe stand-in in
 * `manual` payout mode (the test plays the bank: `payPayout`, `failPayout`). A withdrawal to a
 * `bank_token` is paid by a Stripe payout, one to a `stripe_account` by a Connect transfer, both
 * under the idempotency key `coffer-payout-<withdrawalId>`; Stripe's events end it.
 */
let t: TestNode;
let stripe: StripeHarness;
const OWNER = `payee-${crypto.randomUUID().slice(0, 8)}`;
const AS_OWNER = user(OWNER);
const PROCESSOR: As = { sub: "svc-payouts", role: "service", perms: ["withdrawals:process"] };
/** Everything the process wrote to its console while this file ran: no bank detail may be in it. */
const printed: string[] = [];
/** Every destination used here, to look for in logs, rows and stored events afterwards. */
const destinations: string[] = [];

beforeAll(async () => {
  stripe = await startStripe({ payouts: "manual", retry: { baseDelayMs: 20 } });
  t = await startTestNode("payouts", stripe.env);
  stripe.connect(t.baseUrl);
  for (const channel of ["log", "error", "warn"] as const) {
    const original = console[channel].bind(console);
    spyOn(console, channel).mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(" "));
      original(...args);
    });
  }
});
afterAll(async () => {
  await t?.stop();
  await stripe?.stop();
});

const alnum = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"[b % 57]).join("");
function bankToken(): string {
  const token = `btok_${alnum(20)}`;
  destinations.push(token);
  return token;
}
function connectedAccount(marker = ""): string {
  const account = `acct_${alnum(16)}${marker}`;
  destinations.push(account);
  return account;
}

async function fundedWallet(amount = "100.00"): Promise<string> {
  const created = await t.api("POST", "/v1/wallets", { ownerId: OWNER, asset: "USD" });
  expect(created.status).toBe(201);
  expect((await t.api("POST", `/v1/wallets/${created.body.id}/credits`, { amount })).status).toBe(201);
  return created.body.id;
}

async function withdraw(walletId: string, amount: string, destination: Record<string, string>): Promise<string> {
  const res = await t.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount, destination }, { as: AS_OWNER });
  expect(res.status).toBe(201);
  expect(res.body.status).toBe("requested");
  return res.body.id;
}

const withdrawal = async (id: string) => (await t.api("GET", `/v1/withdrawals/${id}`)).body;
const balance = async (walletId: string) => (await t.api("GET", `/v1/wallets/${walletId}`)).body.balance;

/** Until `done` holds (the worker and the webhooks run on their own), a bounded number of times. */
async function until(done: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await done()) return;
    await Bun.sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const statusIs = (id: string, status: string) => until(async () => (await withdrawal(id)).status === status, `withdrawal ${id} ${status}`);

/** Payouts (or transfers) at Stripe made for a withdrawal. */
async function payoutsFor(withdrawalId: string): Promise<Stripe.Payout[]> {
  const found: Stripe.Payout[] = [];
  for await (const po of stripe.client.payouts.list({ limit: 100 })) if (po.metadata?.coffer_withdrawal_id === withdrawalId) found.push(po);
  return found;
}
async function transfersFor(withdrawalId: string): Promise<Stripe.Transfer[]> {
  const found: Stripe.Transfer[] = [];
  for await (const tr of stripe.client.transfers.list({ limit: 100 })) if (tr.metadata?.coffer_withdrawal_id === withdrawalId) found.push(tr);
  return found;
}

/** The payout the worker sent for a withdrawal, once it was sent (processing). */
async function sentPayout(withdrawalId: string): Promise<Stripe.Payout> {
  await until(async () => (await payoutsFor(withdrawalId)).length > 0 && (await withdrawal(withdrawalId)).status === "processing", "the payout to be sent");
  const [payout, ...more] = await payoutsFor(withdrawalId);
  expect(more).toEqual([]);
  return payout!;
}

/** Journals booked for a withdrawal, with the system account each moved money to or from. */
async function journalsOf(withdrawalId: string): Promise<{ kind: string; account: string; amount: string }[]> {
  const rows = await t.node.db`select j.kind, p.account, p.amount::text as amount from journals j join postings p on p.journal_id = j.id
    where j.source_kind = 'withdrawal' and j.source_id = ${withdrawalId} and p.account like 'system:%' order by j.created_at`;
  return rows.map((r) => ({ kind: r.kind, account: r.account, amount: r.amount }));
}

/** Until nothing is left for the worker (the mark is cleared once the withdrawal ended) and Stripe and its events are quiet. */
async function quiet(): Promise<void> {
  await stripe.standin.idle(10_000);
  expect(await t.node.stripe!.events.idle(10_000)).toBe(true);
  expect(await t.node.payouts!.quiet(10_000)).toBe(true);
}

const paidEventOf = (payoutId: string, type: string) => stripe.standin.events(type).filter((e) => (e.data.object as { id: string }).id === payoutId);

describe("a withdrawal to a bank token", () => {
  test("is sent to Stripe at once (processing, the hold kept) as one payout under the withdrawal's key, and completed when Stripe pays it", async () => {
    const walletId = await fundedWallet();
    const token = bankToken();
    const id = await withdraw(walletId, "40.00", { type: "bank_token", token });
    const payout = await sentPayout(id);
    expect(payout).toMatchObject({ amount: 4_000, currency: "usd", destination: token, status: "pending", metadata: { coffer_withdrawal_id: id, coffer_wallet_id: walletId } });
    const [created] = paidEventOf(payout.id, "payout.created");
    expect(created!.request).toMatchObject({ idempotency_key: `coffer-payout-${id}` });
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "40.00", available: "60.00" });

    stripe.standin.payPayout(payout.id);
    await statusIs(id, "completed");
    expect(await balance(walletId)).toEqual({ posted: "60.00", held: "0.00", available: "60.00" });
    expect(await journalsOf(id)).toEqual([{ kind: "withdrawal", account: "system:stripe_payouts", amount: "4000" }]);
    expect(await withdrawal(id)).toMatchObject({ status: "completed", destination: { type: "bank_token", token: `****${token.slice(-4)}` } });
    const [row] = await t.node.db`select kind, stripe_id, status from withdrawal_payouts where withdrawal_id = ${id}`;
    expect({ ...row }).toEqual({ kind: "payout", stripe_id: payout.id, status: "paid" });
    await quiet();
    await verifyIsClean(t.api);
  });

  test("that fails at the bank releases the hold: the balance is whole again, the reason is Stripe's code", async () => {
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "25.00", { type: "bank_token", token: bankToken() });
    const payout = await sentPayout(id);
    stripe.standin.failPayout(payout.id, "account_closed");
    await statusIs(id, "failed");
    expect(await withdrawal(id)).toMatchObject({ status: "failed", reason: "stripe: account_closed" });
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    expect(await journalsOf(id)).toEqual([]);
    await quiet();
    await verifyIsClean(t.api);
  });

  test("paid, then sent back by the bank: the money returns to the wallet, once", async () => {
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "30.00", { type: "bank_token", token: bankToken() });
    const payout = await sentPayout(id);
    stripe.standin.payPayout(payout.id);
    await statusIs(id, "completed");
    stripe.standin.failPayout(payout.id, "account_closed");
    await statusIs(id, "returned");
    for (const e of [...paidEventOf(payout.id, "payout.failed"), ...paidEventOf(payout.id, "payout.paid")]) stripe.standin.resendEvent(e.id);
    await quiet();
    expect(await withdrawal(id)).toMatchObject({ status: "returned", reason: "stripe: account_closed" });
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    expect(await journalsOf(id)).toEqual([
      { kind: "withdrawal", account: "system:stripe_payouts", amount: "3000" },
      { kind: "withdrawal_return", account: "system:stripe_payouts", amount: "-3000" },
    ]);
    await verifyIsClean(t.api);
  });
});

describe("Stripe's events, repeated or out of order", () => {
  test("every event delivered twice, and the paid event again later: one completion", async () => {
    stripe.standin.setDelivery("twice");
    try {
      const walletId = await fundedWallet();
      const id = await withdraw(walletId, "10.00", { type: "bank_token", token: bankToken() });
      const payout = await sentPayout(id);
      stripe.standin.payPayout(payout.id);
      await statusIs(id, "completed");
      await quiet();
      for (const e of paidEventOf(payout.id, "payout.paid")) stripe.standin.resendEvent(e.id);
      await quiet();
      expect(await journalsOf(id)).toEqual([{ kind: "withdrawal", account: "system:stripe_payouts", amount: "1000" }]);
      expect(await balance(walletId)).toEqual({ posted: "90.00", held: "0.00", available: "90.00" });
    } finally {
      stripe.standin.setDelivery("normal");
    }
  });

  test("payout.failed arriving before payout.paid (paid, then returned, delivered backwards): failed, nothing moved, and the late paid changes nothing", async () => {
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "20.00", { type: "bank_token", token: bankToken() });
    const payout = await sentPayout(id);
    stripe.standin.setWebhook(undefined);
    try {
      stripe.standin.payPayout(payout.id);
      stripe.standin.failPayout(payout.id, "no_account");
    } finally {
      stripe.connect(t.baseUrl);
    }
    stripe.standin.resendEvent(paidEventOf(payout.id, "payout.failed")[0]!.id);
    await statusIs(id, "failed");
    await quiet();
    stripe.standin.resendEvent(paidEventOf(payout.id, "payout.paid")[0]!.id);
    await quiet();
    expect(await withdrawal(id)).toMatchObject({ status: "failed", reason: "stripe: no_account" });
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    expect(await journalsOf(id)).toEqual([]);
    await verifyIsClean(t.api);
  });

  test("payout.paid arriving before the create call's answer: completed once, and the late answer changes nothing", async () => {
    // Stripe makes the payout, then takes 1.5 s to answer: the bank pays it meanwhile.
    stripe.standin.injectFault({ mode: "delay", when: "after", delayMs: 1_500, path: "/v1/payouts", method: "POST", count: 1 });
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "15.00", { type: "bank_token", token: bankToken() });
    await until(async () => (await payoutsFor(id)).length === 1, "the payout at Stripe");
    const [payout] = await payoutsFor(id);
    stripe.standin.payPayout(payout!.id);
    await statusIs(id, "completed");
    const [early] = await t.node.db`select stripe_id, status from withdrawal_payouts where withdrawal_id = ${id}`;
    expect({ ...early }).toEqual({ stripe_id: payout!.id, status: "paid" });
    await Bun.sleep(1_600); // the answer arrives
    await quiet();
    expect(await payoutsFor(id)).toHaveLength(1);
    expect(await journalsOf(id)).toEqual([{ kind: "withdrawal", account: "system:stripe_payouts", amount: "1500" }]);
    expect(await balance(walletId)).toEqual({ posted: "85.00", held: "0.00", available: "85.00" });
    await verifyIsClean(t.api);
  });
});

describe("when Stripe fails or refuses", () => {
  for (const when of ["before", "after"] as const) {
    test(`a 500 while creating the payout (${when === "before" ? "nothing made" : "made, but the answer lost"}) is retried later with the same key: one payout`, async () => {
      stripe.standin.injectFault({ mode: "500", when, path: "/v1/payouts", method: "POST", count: 1 });
      const walletId = await fundedWallet();
      const id = await withdraw(walletId, "12.00", { type: "bank_token", token: bankToken() });
      const payout = await sentPayout(id);
      await until(async () => (await t.node.db`select stripe_id from withdrawal_payouts where withdrawal_id = ${id}`)[0]?.stripe_id === payout.id, "the answer recorded");
      expect(await payoutsFor(id)).toHaveLength(1);
      const keys = paidEventOf(payout.id, "payout.created").map((e) => e.request?.idempotency_key);
      expect(keys).toEqual([`coffer-payout-${id}`]);
      stripe.standin.payPayout(payout.id);
      await statusIs(id, "completed");
      await quiet();
      expect(await journalsOf(id)).toEqual([{ kind: "withdrawal", account: "system:stripe_payouts", amount: "1200" }]);
    });
  }

  test("a payout Stripe refuses (no such bank account) fails the withdrawal and releases its hold", async () => {
    stripe.standin.injectFault({ mode: "error", status: 400, error: { type: "invalid_request_error", code: "resource_missing", message: "No such external account" }, path: "/v1/payouts", method: "POST", count: 1 });
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "50.00", { type: "bank_token", token: bankToken() });
    await statusIs(id, "failed");
    expect(await withdrawal(id)).toMatchObject({ reason: "stripe: resource_missing" });
    expect(await payoutsFor(id)).toEqual([]);
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    await quiet();
  });
});

describe("a withdrawal to a connected account", () => {
  test("is paid by one Connect transfer and completed once it is made", async () => {
    const walletId = await fundedWallet();
    const account = connectedAccount();
    const id = await withdraw(walletId, "35.00", { type: "stripe_account", account });
    await statusIs(id, "completed");
    const transfers = await transfersFor(id);
    expect(transfers.map((tr) => ({ amount: tr.amount, currency: tr.currency, destination: tr.destination }))).toEqual([{ amount: 3_500, currency: "usd", destination: account }]);
    expect(await journalsOf(id)).toEqual([{ kind: "withdrawal", account: "system:stripe_payouts", amount: "3500" }]);
    expect(await balance(walletId)).toEqual({ posted: "65.00", held: "0.00", available: "65.00" });
    await quiet();
  });

  test("to an account Stripe does not know fails, the money back", async () => {
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "35.00", { type: "stripe_account", account: connectedAccount("missing") });
    await statusIs(id, "failed");
    expect(await withdrawal(id)).toMatchObject({ reason: "stripe: resource_missing" });
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    await quiet();
  });
});

describe("processors and owners", () => {
  test("processors cannot step a withdrawal Stripe pays, and its owner cannot cancel it once sent", async () => {
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "5.00", { type: "bank_token", token: bankToken() });
    await sentPayout(id);
    for (const step of ["process", "complete", "fail"]) expectProblem(await t.api("POST", `/v1/withdrawals/${id}/${step}`, {}, { as: PROCESSOR }), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/v1/withdrawals/${id}/cancel`, {}, { as: AS_OWNER }), 409, "INVALID_TRANSITION");
    expect(await balance(walletId)).toEqual({ posted: "100.00", held: "5.00", available: "95.00" });
  });

  test("an IBAN withdrawal is left to processors: nothing goes to Stripe, and completing it by hand posts to system:withdrawals", async () => {
    const walletId = await fundedWallet();
    const id = await withdraw(walletId, "7.00", { type: "bank", account: "DE89 3704 0044 0532 0130 00" });
    await Bun.sleep(300);
    await quiet();
    expect(await withdrawal(id)).toMatchObject({ status: "requested" });
    expect(await payoutsFor(id)).toEqual([]);
    expect((await t.api("POST", `/v1/withdrawals/${id}/complete`, {}, { as: PROCESSOR })).status).toBe(200);
    expect(await journalsOf(id)).toEqual([{ kind: "withdrawal", account: "system:withdrawals", amount: "700" }]);
  });
});

describe("bank details", () => {
  test("never appear in logs, outbox events, stored webhooks or any row but the sealed destination", async () => {
    expect(destinations.length).toBeGreaterThan(5);
    const leaked = printed.filter((line) => destinations.some((d) => line.includes(d)));
    expect(leaked).toEqual([]);
    const [rows] = await t.node.db`select
      (select string_agg(payload::text, ' ') from events) as outbox,
      (select string_agg(body, ' ') from stripe_events) as events,
      (select string_agg(row_to_json(p)::text, ' ') from withdrawal_payouts p) as payouts,
      (select string_agg(coalesce(reason, '') || (destination->'masked')::text, ' ') from withdrawals) as withdrawals,
      (select string_agg(body::text, ' ') from idempotency_keys) as replies`;
    for (const [where, text] of Object.entries(rows!)) {
      const found = destinations.filter((d) => String(text ?? "").includes(d));
      expect({ where, found }).toEqual({ where, found: [] });
    }
    // The payout events were stored, with the destination masked.
    const [stored] = await t.node.db`select body from stripe_events where type = 'payout.paid' limit 1`;
    expect(JSON.parse(stored!.body).data.object.destination).toMatch(/^\*\*\*\*/);
  });
});
