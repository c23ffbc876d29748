import type Stripe from "stripe";
import { Backoff } from "../../../lib/backoff";
import type { Db } from "../../../lib/db";
import { log, reason } from "../../../lib/log";
import { EVERYTHING, type Ownership } from "../../workers/ownership";
import { Pump } from "../../workers/pump";

/**
 * Stripe events, from the webhook to their effect.
 *
 * The webhook (src/http/stripe-webhook.ts) verifies an event and stores it in `stripe_events` under
 * Stripe's event id, then answers 200: the row is the event's one chance to be processed (a replay
 * finds it there and does nothing), and it is durable before Stripe hears "received". This worker
 * takes stored events in the order they arrived and hands each to the handler registered for its
 * type; what came of it is written on the row (`applied`, `ignored: …`, `alert: …`). A handler
 * that answers `retry` (Stripe or the ledger did not answer) is tried again later, backing off.
 *
 * Handlers are registered by type, so each rail adds its own: card deposits
 * (deposit-events.ts: payment_intent.*, charge.refunded, charge.refund.updated, charge.dispute.*),
 * and bank payouts (`payout.paid`, `payout.failed`) with `register` the same way. Only events of a
 * registered type are stored at all; any other type is answered 200 and dropped.
 *
 * Handlers must be idempotent and order-independent: they act on the object's state as Stripe
 * reports it, keyed by event id (so one event processed twice acts once), and the actors they
 * command refuse what is stale.
 */
export type EventOutcome = "applied" | `ignored: ${string}` | `alert: ${string}`;
export type EventHandler = (event: Stripe.Event) => Promise<EventOutcome | "retry">;

export class WebhookDispatcher {
  private readonly handlers = new Map<string, EventHandler>();

  /** Handle events of `type` from now on (one handler per type). */
  register(type: string, handler: EventHandler): void {
    if (this.handlers.has(type)) throw new Error(`a handler for ${type} is already registered`);
    this.handlers.set(type, handler);
  }

  handles(type: string): boolean {
    return this.handlers.has(type);
  }

  get types(): string[] {
    return [...this.handlers.keys()].sort();
  }

  async dispatch(event: Stripe.Event): Promise<EventOutcome | "retry"> {
    const handler = this.handlers.get(event.type);
    if (!handler) return "ignored: no handler for this type";
    return handler(event);
  }
}

/** Events processed in one pass at most (at once: each deposit's actor orders its own). */
const BATCH = 64;
/** A failing event waits 250 ms, then 500 ms… up to 30 s; past EVENT_FAILURES_LOUD failures it is logged as an error. */
const EVENT_RETRY = { baseMs: 250, maxMs: 30_000, itemsMax: 10_000 };
const EVENT_FAILURES_LOUD = 10;

export class StripeEventWorker {
  private readonly pump: Pump;
  private readonly backoff = new Backoff(EVENT_RETRY);

  constructor(
    private readonly db: Db,
    private readonly dispatcher: WebhookDispatcher,
    pollMs = 1_000,
    /** With several nodes: processes only on the holder of the `stripe-events` lease (src/workers/ownership.ts). */
    private readonly ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("stripe events", () => this.pass(), pollMs);
  }

  /** An event was stored: process it now rather than at the next poll. */
  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }

  /** Resolves true once every stored event has been processed (tests, shutdown). */
  idle(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => (await this.db`select count(*)::int as n from stripe_events where processed_at is null`)[0]!.n === 0, timeoutMs);
  }

  private async pass(): Promise<boolean> {
    if (!this.ownership.leads("stripe-events")) return false; // another node processes them
    const resting = this.backoff.waiting();
    const rows = await this.db`select id, type, body from stripe_events
      where processed_at is null and id <> all(${this.db.array(resting)}::text[]) order by received_at, id limit ${BATCH}`;
    const results = await Promise.all(
      rows.map(async (row) => {
        let outcome: EventOutcome | "retry";
        try {
          outcome = await this.dispatcher.dispatch(JSON.parse(row.body) as Stripe.Event);
        } catch (error) {
          log("warn", "stripe event failed; will retry", { eventId: row.id, type: row.type, error: reason(error) });
          outcome = "retry";
        }
        if (outcome === "retry") {
          const { attempts, retryInMs } = this.backoff.failed(row.id);
          if (attempts >= EVENT_FAILURES_LOUD) log("error", "stripe event keeps failing", { eventId: row.id, type: row.type, attempts, retryInMs });
          await this.db`update stripe_events set attempts = attempts + 1 where id = ${row.id}`;
          return false;
        }
        this.backoff.succeeded(row.id);
        if (outcome.startsWith("alert")) log("error", `alert: stripe event ${outcome.slice("alert: ".length)}`, { eventId: row.id, type: row.type });
        await this.db`update stripe_events set processed_at = now(), outcome = ${outcome}, attempts = attempts + 1 where id = ${row.id} and processed_at is null`;
        return true;
      }),
    );
    return rows.length === BATCH && results.some(Boolean);
  }
}
