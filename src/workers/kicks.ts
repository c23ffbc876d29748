import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { BusGuard } from "../../actors/bus/guard";
import type { Ownership, Singleton } from "./ownership";

/**
 * A commit on one node wakes the singleton jobs that run on another: without this, a node that is
 * not the outbox relay's (or monitoring's, or the chain sweep's) holder would leave its events to
 * the holder's next poll. A kick is a signed, empty message on `<prefix>.cluster.kick.<job>`; the
 * holder kicks its worker. At most one kick per job leaves a node every `throttleMs` (the last one
 * of a burst is sent after it): a kick only says "look now", so one stands for many.
 */
export class Kicks {
  private readonly local = new Map<Singleton, () => void>();
  private readonly sentAt = new Map<Singleton, number>();
  private readonly trailing = new Map<Singleton, Timer>();
  private subscription: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bus: BusGuard,
    private readonly prefix: string,
    private readonly ownership: Ownership,
    private readonly throttleMs = 50,
  ) {}

  /** How this node's worker of `job` is woken (when this node holds it). */
  handle(job: Singleton, kick: () => void): this {
    this.local.set(job, kick);
    return this;
  }

  start(): void {
    const base = `${this.prefix}.cluster.kick.`;
    this.subscription = this.nc.subscribe(`${base}*`, {
      callback: (error, msg) => {
        if (error) return;
        try {
          if (!this.bus.open(msg.subject, msg.data)) return; // unsigned, stale or replayed: counted by the guard
          const job = msg.subject.slice(base.length) as Singleton;
          if (this.ownership.leads(job)) this.local.get(job)?.();
        } catch {
          this.bus.drop("failed", msg.subject);
        }
      },
    });
  }

  /** Something `job` must look at was committed here: wake it, here or on its holder. */
  kick(job: Singleton): void {
    if (this.ownership.leads(job)) return void this.local.get(job)?.();
    if (!this.subscription || this.nc.isClosed()) return; // no cluster (yet): the holder's poll finds it
    if (this.trailing.has(job)) return;
    const waitMs = (this.sentAt.get(job) ?? 0) + this.throttleMs - Date.now();
    if (waitMs <= 0) return this.send(job);
    const timer = setTimeout(() => {
      this.trailing.delete(job);
      this.send(job);
    }, waitMs);
    timer.unref?.();
    this.trailing.set(job, timer);
  }

  stop(): void {
    for (const timer of this.trailing.values()) clearTimeout(timer);
    this.trailing.clear();
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private send(job: Singleton): void {
    this.sentAt.set(job, Date.now());
    const subject = `${this.prefix}.cluster.kick.${job}`;
    try {
      this.nc.publish(subject, this.bus.seal(subject, "").payload);
    } catch {
      // The connection is closing: the holder's own poll finds the work.
    }
  }
}
