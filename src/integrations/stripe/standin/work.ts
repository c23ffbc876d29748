/**
 * Counts the stand-in's outstanding asynchronous work (webhook deliveries and their retries,
 * payouts waiting to settle, refunds waiting to fail, shuffle windows) so a test can
 * `await standin.idle()` instead of sleeping, and `stop()`/`reset()` can cancel all of it.
 */
export class WorkTracker {
  private pending = 0;
  private waiters: (() => void)[] = [];
  private readonly timers = new Map<ReturnType<typeof setTimeout>, () => void>();

  get outstanding(): number {
    return this.pending;
  }

  /** Mark one unit of work started; call the returned function once when it is over. */
  begin(): () => void {
    this.pending++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.pending--;
      if (this.pending === 0) this.wake();
    };
  }

  /** `setTimeout` that counts as work until `fn` has run (or the timer is cancelled). */
  schedule(fn: () => void, ms: number, onError: (err: unknown) => void = () => {}): void {
    const end = this.begin();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      try {
        fn();
      } catch (err) {
        onError(err);
      } finally {
        end();
      }
    }, Math.max(0, ms));
    this.timers.set(timer, end);
  }

  cancelTimers(): void {
    for (const [timer, end] of this.timers) {
      clearTimeout(timer);
      end();
    }
    this.timers.clear();
  }

  private wake(): void {
    // Resolve on a later macrotask, and only if still idle: work often ends just as the next
    // piece (a retry, a follow-up event) is about to begin in the same turn.
    setTimeout(() => {
      if (this.pending !== 0) return;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    }, 0);
  }

  /** Resolves once nothing is outstanding; rejects after `timeoutMs` (default 10 s). */
  idle(timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`stripe stand-in: still ${this.pending} unit(s) of work after ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
      if (this.pending === 0) this.wake();
    });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
