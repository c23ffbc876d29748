import type Stripe from "stripe";
import type { Db } from "../../../lib/db";
import { stripeClient, type StripeSettings } from "./client";
import { StripeEventWorker, WebhookDispatcher } from "./events";
import { verifyWebhook } from "./webhook";
import { lastFour } from "../../api/views";
import { EVERYTHING, type Ownership } from "../../workers/ownership";

/**
 * Coffer's Stripe side on one node, when STRIPE_SECRET_KEY is set: the SDK client, the webhook's
 * intake, the dispatcher that rails register their event handlers with (card deposits now; bank
 * payouts register `payout.paid` / `payout.failed` the same way), and the worker that processes
 * stored events.
 */
export class StripeRail {
  readonly client: Stripe;
  readonly dispatcher = new WebhookDispatcher();
  readonly events: StripeEventWorker;

  constructor(
    private readonly db: Db,
    private readonly settings: StripeSettings,
    /** With several nodes: stored events are processed by one node (src/workers/ownership.ts)... */
    ownership: Ownership = EVERYTHING,
    /** ...woken by this when an event is stored here (src/workers/kicks.ts); by default, this node's worker. */
    private readonly stored: () => void = () => this.events.kick(),
  ) {
    this.client = stripeClient(settings);
    this.events = new StripeEventWorker(db, this.dispatcher, undefined, ownership);
  }

  /**
   * A webhook as it arrived: verified (or CofferError 400, nothing written), then, if it is of a
   * type some rail handles, stored once under its event id. True when it was new.
   */
  async intake(raw: Uint8Array, signature: string | undefined): Promise<{ stored: boolean; type: string }> {
    const event = await verifyWebhook(raw, signature, this.settings.webhookSecret);
    if (!this.dispatcher.handles(event.type)) return { stored: false, type: event.type };
    const rows = await this.db`insert into stripe_events (id, type, body) values (${event.id}, ${event.type}, ${storedBody(event, raw)})
      on conflict (id) do nothing returning id`;
    if (rows.length) this.stored();
    return { stored: rows.length > 0, type: event.type };
  }

  stop(): Promise<void> {
    return this.events.stop();
  }
}

/**
 * An event's body as it is kept: byte for byte as Stripe signed it, but for payouts, whose
 * `destination` names the bank account paid (`ba_…`, `btok_…`, `card_…`): bank details stay sealed
 * at rest, so it is kept masked like every destination Coffer shows (its last four at most). No
 * handler reads it.
 */
export function storedBody(event: Stripe.Event, raw: Uint8Array): string {
  const text = new TextDecoder().decode(raw);
  if (!event.type.startsWith("payout.")) return text;
  const parsed = JSON.parse(text) as { data?: { object?: Record<string, unknown>; previous_attributes?: Record<string, unknown> } };
  for (const part of [parsed.data?.object, parsed.data?.previous_attributes]) {
    if (part && typeof part.destination === "string") part.destination = lastFour(part.destination);
  }
  return JSON.stringify(parsed);
}
