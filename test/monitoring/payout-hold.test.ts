import { afterAll, beforeAll, expect, test } from "bun:test";
import { PayoutWorker } from "../../src/workers/payout-worker";
import { people, user } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { startStripe, type StripeHarness } from "../support/stripe";
import { created, only, setRules, settle, wallet } from "./support";

/**
 * What monitoring relies on from the Stripe payout worker (src/workers/payout-worker.ts): it pays
 * only `requested` withdrawals, leaves one in manual review alone without dropping its mark, pays
 * it once an admin released it, and lets a rejected one go without paying it. (Which of the two
 * looks first at a fresh withdrawal is a race: the node's own worker is stopped here, and one made
 * after the hold plays it, so the test decides the order.)
 */
let t: TestNode;
let stripe: StripeHarness;
let worker: PayoutWorker | undefined;

beforeAll(async () => {
  stripe = await startStripe({ payouts: "manual" });
  t = await startTestNode("monitoring-payout-hold", stripe.env);
  stripe.connect(t.baseUrl);
  await t.node.payouts!.stop();
  await setRules(t, only({ newDestination: { outcome: "hold" } }));
});
afterAll(async () => {
  await worker?.stop();
  await t?.stop();
  await stripe?.stop();
});

const token = () => `btok_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
const statusOf = async (id: string) => (await t.api("GET", `/v1/withdrawals/${id}`)).body.status as string;
const payoutRow = async (id: string) => (await t.node.db`select status, stripe_id from withdrawal_payouts where withdrawal_id = ${id}`)[0];
const marked = async (id: string) => (await t.node.db`select count(*)::int as n from outbox where payout_pending and payload->>'withdrawalId' = ${id}`)[0]!.n as number;

async function until(done: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await done()) return;
    await Bun.sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a held Stripe payout is not sent, keeps its mark, and is sent once released; a rejected one is never sent", async () => {
  const { owner } = people("owner");
  const w = await wallet(t, owner, "100.00");
  const released = (await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "10.00", destination: { type: "bank_token", token: token() } }, user(owner))).id as string;
  const rejected = (await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "5.00", destination: { type: "bank_token", token: token() } }, user(owner))).id as string;
  await settle(t);
  expect([await statusOf(released), await statusOf(rejected)]).toEqual(["manual_review", "manual_review"]);

  worker = new PayoutWorker(t.node.db, t.node.ops, t.node.vault, t.node.stripe!.client, 50);
  worker.kick();
  await Bun.sleep(500);
  expect([await statusOf(released), await statusOf(rejected)]).toEqual(["manual_review", "manual_review"]);
  expect([await payoutRow(released), await payoutRow(rejected)]).toEqual([undefined, undefined]);
  expect([await marked(released), await marked(rejected)]).toEqual([1, 1]);

  await created(t, "POST", `/admin/withdrawals/${released}/release`, {}, undefined, 200);
  await created(t, "POST", `/admin/withdrawals/${rejected}/reject`, {}, undefined, 200);
  worker.kick();
  await until(async () => (await payoutRow(released))?.stripe_id != null, "the released withdrawal's payout");
  expect(await statusOf(released)).toBe("processing");
  await until(async () => (await marked(rejected)) === 0, "the rejected withdrawal's mark to clear");
  expect(await statusOf(rejected)).toBe("rejected");
  expect(await payoutRow(rejected)).toBeUndefined();
});
