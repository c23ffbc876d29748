import { afterAll, beforeAll, expect, test } from "bun:test";
import { people, user } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { startStripe, type StripeHarness } from "../support/stripe";
import { created, only, setRules, settle, wallet } from "./support";

/**
 * With monitoring on, the node's own Stripe payout worker and the monitoring worker both see a new
 * bank withdrawal. The payout worker waits until monitoring has read the request and applied any
 * hold it decided, so a `hold` rule parks the payout before any money is sent: never a race.
 */
let t: TestNode;
let stripe: StripeHarness;

beforeAll(async () => {
  stripe = await startStripe({ payouts: "manual" });
  t = await startTestNode("monitoring-payout-race", { ...stripe.env, MONITORING: "on" });
  stripe.connect(t.baseUrl);
  await setRules(t, only({ newDestination: { outcome: "hold" } }));
});
afterAll(async () => {
  await t?.stop();
  await stripe?.stop();
});

const token = () => `btok_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;

test("withdrawals to new destinations are held before the payout worker sends any of them", async () => {
  const { racer: owner } = people("racer");
  const w = await wallet(t, owner, "100.00");
  const ids = await Promise.all(
    Array.from({ length: 5 }, async () =>
      (await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "1.00", destination: { type: "bank_token", token: token() } }, user(owner))).id as string),
  );
  await settle(t);
  // The payout worker polls every 500 ms: give it several turns at the held withdrawals.
  for (let turn = 0; turn < 4; turn++) {
    t.node.payouts!.kick();
    await Bun.sleep(250);
  }
  const statuses = await Promise.all(ids.map(async (id) => (await t.api("GET", `/v1/withdrawals/${id}`)).body.status));
  expect(statuses).toEqual(ids.map(() => "manual_review"));
  const sent = await t.node.db`select count(*)::int as n from withdrawal_payouts where withdrawal_id = any(${t.node.db.array(ids)}::uuid[])`;
  expect(sent[0]!.n).toBe(0);
  expect(stripe.standin.state.payouts.size).toBe(0);
});
