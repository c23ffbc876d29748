import type Stripe from "stripe";
import { signPayload } from "../../src/integrations/stripe/standin";
import type { Caller } from "../../src/api/wallet-service";
import type { Node } from "../../src/node";
import { type Attempt, type ErrorSamples, inParallel } from "./measure";

/**
 * The webhook-intake workload of `bun run bench`: signed Stripe events per second through
 * `POST /v1/webhooks/stripe`, as Stripe sends them. Each event is a `payment_intent.succeeded` for
 * a deposit that exists (made through Coffer, its PaymentIntent paid at the Stripe stand-in), with
 * an event id of its own (no duplicates: each is verified, stored and processed), the body as
 * Stripe writes it (pretty JSON) and a `Stripe-Signature` made as Stripe makes it (HMAC-SHA256 over
 * `<t>.<body>`). The first event of each deposit credits its wallet; the rest find it credited.
 * What is measured is the intake: verified and stored (durable) before the 200. Processing runs
 * behind it on the same node; how long the backlog takes to drain is reported next to it.
 */
export interface IntakeSetup {
  /** Each deposit's paid PaymentIntent, serialised once, as events carry it. */
  intents: string[];
  deposits: string[];
}

/** Make `count` deposits into `wallets` and have their card holders pay them at the stand-in. */
export async function setupIntake(node: Node, stripe: Stripe, caller: Caller, wallets: string[], count: number, concurrency: number): Promise<IntakeSetup> {
  const intents: string[] = [];
  const deposits: string[] = [];
  await inParallel(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => {
    const made = await node.deposits.create(caller, `bench-deposit-${i}`, wallets[i % wallets.length]!, { amount: "10.00" });
    if (made.status !== 201) throw new Error(`deposit failed: ${made.status} ${JSON.stringify(made.body)}`);
    const pi = await stripe.paymentIntents.confirm((made.body.stripe as { paymentIntentId: string }).paymentIntentId, { payment_method: "pm_card_visa" });
    intents.push(JSON.stringify(pi, null, 2));
    deposits.push(made.body.id as string);
  });
  return { intents, deposits };
}

/** One signed event POSTed per attempt, a fresh event id each time, round the deposits. */
export function webhookIntake(baseUrl: string, setup: IntakeSetup, secret: string, apiVersion: string): (errors: ErrorSamples) => Attempt {
  const run = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  let n = 0;
  return (errors) => async () => {
    const i = n++;
    const body = `{
  "id": "evt_bench${run}${i}",
  "object": "event",
  "api_version": "${apiVersion}",
  "created": ${Math.floor(Date.now() / 1000)},
  "data": {
    "object": ${setup.intents[i % setup.intents.length]!.replaceAll("\n", "\n    ")}
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": { "id": null, "idempotency_key": null },
  "type": "payment_intent.succeeded"
}`;
    const res = await fetch(`${baseUrl}/v1/webhooks/stripe`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": signPayload(body, secret), "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
      body,
    });
    const text = await res.text();
    if (res.status === 200) return true;
    errors.add(`${res.status} ${text.slice(0, 120)}`);
    return false;
  };
}
