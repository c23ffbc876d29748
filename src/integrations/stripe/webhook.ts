import Stripe from "stripe";
import { CofferError } from "../../../lib/errors";

/**
 * Is this webhook Stripe's? The `Stripe-Signature` header (`t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">`) is checked over the body's raw bytes by the official SDK's verifier, with
 * its tolerance of 300 s for an old timestamp. The SDK takes any timestamp in the future, so one
 * more than 300 s ahead of this node's clock is refused here: a signature minted for later (by
 * someone who once held the secret, or a clock gone wrong) must not be good for a long while.
 *
 * Every refusal is the same 400 WEBHOOK_SIGNATURE_INVALID, whatever was wrong: the answer tells a
 * forger nothing. Nothing is written before this passes.
 */
export const WEBHOOK_TOLERANCE_S = 300;

const verifier = Stripe.webhooks;

export async function verifyWebhook(raw: Uint8Array, header: string | undefined, secret: string, nowMs = Date.now()): Promise<Stripe.Event> {
  if (!header || header.length > 4_096) throw invalid();
  const timestamps = [...header.matchAll(/(?:^|,)\s*t=(\d{1,12})(?=,|$)/g)].map((m) => Number(m[1]));
  if (timestamps.length !== 1) throw invalid();
  if (timestamps[0]! - Math.floor(nowMs / 1000) > WEBHOOK_TOLERANCE_S) throw invalid();
  let event: Stripe.Event;
  try {
    // (The async verifier: under Bun the SDK's crypto is WebCrypto, which has no synchronous HMAC.)
    event = await verifier.constructEventAsync(raw, header, secret, WEBHOOK_TOLERANCE_S, undefined, nowMs);
  } catch {
    throw invalid();
  }
  if (!isEvent(event)) throw invalid();
  return event;
}

/** What Coffer needs of an event before it stores it: an id, a type, and an object. */
function isEvent(value: unknown): value is Stripe.Event {
  const e = value as { id?: unknown; type?: unknown; data?: { object?: unknown } };
  return (
    typeof e === "object" &&
    e !== null &&
    typeof e.id === "string" &&
    /^[A-Za-z0-9_]{1,255}$/.test(e.id) &&
    typeof e.type === "string" &&
    e.type.length <= 255 &&
    typeof e.data?.object === "object" &&
    e.data.object !== null
  );
}

function invalid(): CofferError {
  return new CofferError("WEBHOOK_SIGNATURE_INVALID", "the Stripe-Signature header does not prove this body came from Stripe");
}
