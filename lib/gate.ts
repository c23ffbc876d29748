/**
 * At most `inFlightMax` pieces of work at once, at most `waitingMax` more waiting for a slot, and
 * past that a refusal at once: a node under more load than it can carry says so (503 OVERLOADED)
 * instead of queueing without end. Waiters are let in oldest first. A waiter that has not found a
 * slot after `waitMaxMs` (when given) is refused as well, so nobody waits without a bound.
 */
export interface GateLimits {
  /** Pieces of work running at once. */
  inFlightMax: number;
  /** Callers waiting for a slot at most; one more is refused immediately. */
  waitingMax: number;
  /** How long a caller may wait for a slot before it is refused (unset: until a slot frees). */
  waitMaxMs?: number;
}

/** Gives the slot back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  admit: (release: Release) => void;
  refuse: () => void;
  timer: Timer | undefined;
}

export class Gate {
  private running = 0;
  private readonly waiters: Waiter[] = [];
  /** Callers refused since start (the waiting list was full, or they waited past waitMaxMs). */
  refused = 0;

  constructor(private readonly limits: GateLimits) {
    if (!Number.isInteger(limits.inFlightMax) || limits.inFlightMax < 1) throw new Error(`gate: inFlightMax must be a positive integer, not ${limits.inFlightMax}`);
    if (!Number.isInteger(limits.waitingMax) || limits.waitingMax < 0) throw new Error(`gate: waitingMax must be a whole number, not ${limits.waitingMax}`);
  }

  get inFlight(): number {
    return this.running;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * A slot: resolves with its release once one is free, or with undefined when the caller is
   * refused (the waiting list is full: then at once, synchronously settled; or it waited past
   * waitMaxMs). Whoever gets a release must call it exactly when the work ends, however it ends.
   */
  enter(): Promise<Release | undefined> {
    if (this.running < this.limits.inFlightMax && !this.waiters.length) return Promise.resolve(this.take());
    if (this.waiters.length >= this.limits.waitingMax) {
      this.refused++;
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        admit: (release) => resolve(release),
        refuse: () => resolve(undefined),
        timer: undefined,
      };
      if (this.limits.waitMaxMs !== undefined) {
        waiter.timer = setTimeout(() => {
          const at = this.waiters.indexOf(waiter);
          if (at < 0) return;
          this.waiters.splice(at, 1);
          this.refused++;
          waiter.refuse();
        }, this.limits.waitMaxMs);
        waiter.timer.unref?.();
      }
      this.waiters.push(waiter);
    });
  }

  /**
   * Run `work` in a slot; when the gate refuses, return `refusal()` instead without running it.
   * The slot is given back however `work` ends (an exception travels on to the caller).
   */
  async run<T>(work: () => Promise<T>, refusal: () => T): Promise<T> {
    const release = await this.enter();
    if (!release) return refusal();
    try {
      return await work();
    } finally {
      release();
    }
  }

  private take(): Release {
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.admitNext();
    };
  }

  private admitNext(): void {
    while (this.running < this.limits.inFlightMax && this.waiters.length) {
      const next = this.waiters.shift()!;
      if (next.timer) clearTimeout(next.timer);
      next.admit(this.take());
    }
  }
}
