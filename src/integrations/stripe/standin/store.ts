import type Stripe from "stripe";
import { noSuch } from "./errors";
import type { Range } from "./params";

export interface ListPage<T> {
  object: "list";
  data: T[];
  has_more: boolean;
  url: string;
}

export interface ListQuery {
  limit?: number;
  starting_after?: string;
  ending_before?: string;
  created?: Range;
}

function inRange(value: number, r: Range | undefined): boolean {
  if (!r) return true;
  if (r.gt !== undefined && !(value > r.gt)) return false;
  if (r.gte !== undefined && !(value >= r.gte)) return false;
  if (r.lt !== undefined && !(value < r.lt)) return false;
  if (r.lte !== undefined && !(value <= r.lte)) return false;
  return true;
}

/**
 * One kind of Stripe object, in creation order, capped at `cap` objects: past the cap the oldest
 * is forgotten (a later retrieve of it answers 404), so a long-running stand-in stays bounded.
 */
export class Collection<T extends { id: string; created: number }> {
  private readonly byId = new Map<string, T>();

  constructor(
    readonly kind: string,
    private readonly cap: number,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): T | undefined {
    return this.byId.get(id);
  }

  /** The object or Stripe's 404 `resource_missing`. */
  require(id: string, param = "id"): T {
    const found = this.byId.get(id);
    if (!found) throw noSuch(this.kind, id, param);
    return found;
  }

  add(obj: T): T {
    this.byId.set(obj.id, obj);
    while (this.byId.size > this.cap) {
      const oldest = this.byId.keys().next().value;
      if (oldest === undefined) break;
      this.byId.delete(oldest);
    }
    return obj;
  }

  /** Oldest first. */
  values(): T[] {
    return [...this.byId.values()];
  }

  clear(): void {
    this.byId.clear();
  }

  /** Stripe's list semantics: newest first, `limit` (default 10), cursors by id, `created` range. */
  list(url: string, q: ListQuery, filter: (obj: T) => boolean = () => true): ListPage<T> {
    const limit = q.limit ?? 10;
    const newestFirst = this.values().reverse().filter((o) => inRange(o.created, q.created) && filter(o));
    let window = newestFirst;
    if (q.starting_after !== undefined) {
      if (!this.byId.has(q.starting_after)) throw noSuch(this.kind, q.starting_after, "starting_after");
      const cursor = this.byId.get(q.starting_after)!;
      const all = this.values().reverse();
      const pos = all.indexOf(cursor);
      const older = new Set(all.slice(pos + 1));
      window = newestFirst.filter((o) => older.has(o));
      return { object: "list", data: window.slice(0, limit), has_more: window.length > limit, url };
    }
    if (q.ending_before !== undefined) {
      if (!this.byId.has(q.ending_before)) throw noSuch(this.kind, q.ending_before, "ending_before");
      const cursor = this.byId.get(q.ending_before)!;
      const all = this.values().reverse();
      const pos = all.indexOf(cursor);
      const newer = new Set(all.slice(0, pos));
      window = newestFirst.filter((o) => newer.has(o));
      const page = window.slice(Math.max(0, window.length - limit));
      return { object: "list", data: page, has_more: window.length > limit, url };
    }
    return { object: "list", data: window.slice(0, limit), has_more: window.length > limit, url };
  }
}

export interface StoreLimits {
  /** Objects kept per kind (PaymentIntents, charges, …); default 10 000. */
  maxObjects: number;
  /** Events kept; default 10 000. */
  maxEvents: number;
}

export const DEFAULT_LIMITS: StoreLimits = { maxObjects: 10_000, maxEvents: 10_000 };

/** Everything the stand-in knows, in memory only. */
export class StandinState {
  readonly paymentIntents: Collection<Stripe.PaymentIntent>;
  readonly paymentMethods: Collection<Stripe.PaymentMethod>;
  readonly charges: Collection<Stripe.Charge>;
  readonly refunds: Collection<Stripe.Refund>;
  readonly disputes: Collection<Stripe.Dispute>;
  readonly payouts: Collection<Stripe.Payout>;
  readonly transfers: Collection<Stripe.Transfer>;
  readonly balanceTransactions: Collection<Stripe.BalanceTransaction>;
  readonly events: Collection<Stripe.Event>;

  constructor(readonly limits: StoreLimits = DEFAULT_LIMITS) {
    const n = limits.maxObjects;
    this.paymentIntents = new Collection("payment_intent", n);
    this.paymentMethods = new Collection("PaymentMethod", n);
    this.charges = new Collection("charge", n);
    this.refunds = new Collection("refund", n);
    this.disputes = new Collection("dispute", n);
    this.payouts = new Collection("payout", n);
    this.transfers = new Collection("transfer", n);
    this.balanceTransactions = new Collection("balance transaction", n);
    this.events = new Collection("event", limits.maxEvents);
  }

  /** Any stored object by id, for `expand[]`. */
  lookup(id: string): { id: string } | undefined {
    for (const c of this.all()) {
      const found = c.get(id);
      if (found) return found;
    }
    return undefined;
  }

  private all(): Collection<{ id: string; created: number }>[] {
    return [
      this.paymentIntents,
      this.paymentMethods,
      this.charges,
      this.refunds,
      this.disputes,
      this.payouts,
      this.transfers,
      this.balanceTransactions,
      this.events,
    ] as unknown as Collection<{ id: string; created: number }>[];
  }

  clear(): void {
    for (const c of this.all()) c.clear();
  }

  counts(): Record<string, number> {
    return {
      payment_intents: this.paymentIntents.size,
      payment_methods: this.paymentMethods.size,
      charges: this.charges.size,
      refunds: this.refunds.size,
      disputes: this.disputes.size,
      payouts: this.payouts.size,
      transfers: this.transfers.size,
      balance_transactions: this.balanceTransactions.size,
      events: this.events.size,
    };
  }
}
