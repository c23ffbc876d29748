import Stripe from "stripe";
import { startStripeStandin, type StripeStandin, type StripeStandinOptions } from "../../src/integrations/stripe/standin";
import type { Node } from "../../src/node";

/**
 * Stripe for tests: the local stand-in (src/integrations/stripe/standin/), which answers the
 * official SDK as Stripe's test mode does and signs its webhooks as Stripe does, and the same SDK
 * for the test to play the card holder (confirm a PaymentIntent with a test card) or Stripe's
 * dashboard (refund at Stripe directly). Nothing is mocked: Coffer talks to the stand-in over HTTP
 * through its own SDK client, and the stand-in posts signed events to Coffer's webhook.
 */
export const TEST_STRIPE_KEY = "sk_test_coffer0standin0key";
export const TEST_WEBHOOK_SECRET = "whsec_coffer0standin0secret";

export interface StripeHarness {
  standin: StripeStandin;
  /** The SDK, as the card holder's app or the dashboard would use it. */
  client: Stripe;
  /** What a node needs in its environment to use this stand-in. */
  env: Record<string, string>;
  /** Point the stand-in's webhooks at a node (its base URL). */
  connect(baseUrl: string): void;
  stop(): Promise<void>;
}

export async function startStripe(options: StripeStandinOptions = {}): Promise<StripeHarness> {
  const standin = await startStripeStandin({ port: 0, webhookSecret: TEST_WEBHOOK_SECRET, log: () => {}, ...options });
  const client = new Stripe(TEST_STRIPE_KEY, { ...standin.stripeConfig, maxNetworkRetries: 0, telemetry: false });
  return {
    standin,
    client,
    env: { STRIPE_SECRET_KEY: TEST_STRIPE_KEY, STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET, STRIPE_API_BASE: standin.url },
    connect(baseUrl) {
      standin.setWebhook(`${baseUrl}/v1/webhooks/stripe`, TEST_WEBHOOK_SECRET);
    },
    stop: () => standin.stop(),
  };
}

/**
 * Until Stripe and Coffer are both quiet: every webhook delivered (or given up), every stored
 * event processed, every deposit step booked. Each step can start another (an event makes a
 * refund, which makes an event), so it goes round until a whole round found nothing to do.
 */
export async function stripeSettled(node: Node, standin: StripeStandin, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const count = async () => {
    const [row] = await node.db`select (select count(*) from stripe_events where processed_at is null)::int as events,
      (select count(*) from outbox where deposit_pending)::int as steps`;
    return row!.events + row!.steps;
  };
  for (let round = 0; round < 50 && Date.now() < deadline; round++) {
    const left = () => Math.max(1, deadline - Date.now());
    await standin.idle(left());
    if (!(await node.stripe!.events.idle(left()))) break;
    if (!(await node.depositSaga.idle(left()))) break;
    // A step may have asked Stripe for something that sends another event: once Stripe is quiet
    // again, that event is stored (its webhook answered), so the count below sees it.
    await standin.idle(left());
    if ((await count()) === 0) return;
  }
  throw new Error(`Stripe and Coffer did not settle within ${timeoutMs} ms`);
}
