import type { Hono } from "hono";
import { CofferError } from "../../lib/errors";
import { log } from "../../lib/log";
import type { StripeRail } from "../integrations/stripe/rail";
import type { CofferMetrics } from "../monitoring/metrics";
import { sendProblem, instanceOf } from "./respond";

/**
 * `POST /v1/webhooks/stripe`: where Stripe sends events. Not an entry of the operation table, on
 * purpose: it carries no credential (Stripe's signature over the raw body proves who sent it),
 * it must read its body as raw bytes (a parsed and re-serialised body would not verify), it is
 * HTTP only (Stripe does not speak NATS), and the typed client has no business calling it. It is a
 * public path (src/http/auth.ts): the per-IP rate limit applies, nothing else.
 *
 * 400 with nothing written for a missing, wrong, stale or future signature or a changed body;
 * otherwise 200 once the event is stored (or was already: a replay does nothing), or at once for
 * a type no rail handles. Processing follows (src/integrations/stripe/events.ts).
 */
export const STRIPE_WEBHOOK_PATH = "/v1/webhooks/stripe";

export function registerStripeWebhook(app: Hono, stripe: StripeRail | undefined, metrics?: CofferMetrics): void {
  app.post(STRIPE_WEBHOOK_PATH, async (c) => {
    if (!stripe) {
      metrics?.stripeWebhook("unconfigured");
      return sendProblem(c, new CofferError("STRIPE_NOT_CONFIGURED", "Stripe is not configured on this node").toProblem(instanceOf(c)));
    }
    const raw = new Uint8Array(await c.req.arrayBuffer());
    try {
      const { stored, type } = await stripe.intake(raw, c.req.header("stripe-signature"));
      metrics?.stripeWebhook(stored ? "stored" : stripe.dispatcher.handles(type) ? "duplicate" : "ignored");
      return c.json({ received: true }, 200);
    } catch (error) {
      const invalid = error instanceof CofferError && error.code === "WEBHOOK_SIGNATURE_INVALID";
      metrics?.stripeWebhook(invalid ? "invalid" : "error");
      if (invalid) {
        log("warn", "security: a Stripe webhook failed verification", { bytes: raw.byteLength });
      }
      throw error;
    }
  });
}
