/**
 * A closed-loop load generator: `concurrency` callers each run one payment after another until the
 * deadline. Latencies are wall-clock milliseconds (numbers are fine here: they are not money).
 */

/** One attempt: true when the payment was acknowledged (201 / committed). */
export type Attempt = (caller: number) => Promise<boolean>;

export interface Measured {
  ok: number;
  errors: number;
  seconds: number;
  /** Latencies of acknowledged payments, sorted ascending, in ms. */
  latencies_ms: Float64Array;
}

/** An error log limited to the first few distinct messages, so a broken run says why without flooding. */
export class ErrorSamples {
  private readonly seen = new Map<string, number>();
  constructor(private readonly max = 5) {}
  add(message: string): void {
    const known = this.seen.get(message);
    if (known !== undefined) this.seen.set(message, known + 1);
    else if (this.seen.size < this.max) this.seen.set(message, 1);
  }
  list(): string[] {
    return [...this.seen].map(([m, n]) => `${n}x ${m}`);
  }
}

export async function runFor(seconds: number, concurrency: number, attempt: Attempt, errors: ErrorSamples): Promise<Measured> {
  const latencies: number[] = [];
  let failed = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;

  async function caller(index: number): Promise<void> {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      let ok = false;
      try {
        ok = await attempt(index);
      } catch (error) {
        errors.add(String((error as Error)?.message ?? error).slice(0, 200));
      }
      if (ok) latencies.push(performance.now() - t0);
      else failed++;
    }
  }

  await Promise.all(Array.from({ length: concurrency }, (_, i) => caller(i)));
  // Payments started before the deadline finish after it; count the time they took too.
  const elapsed_s = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return { ok: latencies.length, errors: failed, seconds: elapsed_s, latencies_ms: sorted };
}

/** Nearest-rank percentile of sorted values; NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Run `items` through `fn` with at most `limit` in flight (setup work: creating and funding wallets). */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) await fn(items[next++]!);
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
