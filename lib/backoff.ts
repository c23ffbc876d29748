/**
 * Exponential backoff, remembered per item, for work that is retried item by item (a saga step, a
 * request's expiry): an item that failed is left alone for baseMs, then 2·baseMs, 4·baseMs… up to
 * maxMs, and tried at once again after a success. At most `itemsMax` items are remembered (the
 * least recently failed is forgotten first: it is then simply retried sooner), so a flood of
 * failures costs bounded memory.
 */
export interface BackoffLimits {
  baseMs: number;
  maxMs: number;
  itemsMax: number;
}

interface Failing {
  attempts: number;
  retryAtMs: number;
}

export class Backoff {
  private readonly failing = new Map<string, Failing>();

  constructor(private readonly limits: BackoffLimits) {
    if (!(limits.baseMs > 0 && limits.maxMs >= limits.baseMs && limits.itemsMax >= 1)) throw new Error(`backoff: bad limits ${JSON.stringify(limits)}`);
  }

  /** Record a failure; returns how many in a row and how long the item now waits. */
  failed(item: string, nowMs = Date.now()): { attempts: number; retryInMs: number } {
    const attempts = (this.failing.get(item)?.attempts ?? 0) + 1;
    const retryInMs = delayMs(attempts, this.limits.baseMs, this.limits.maxMs);
    this.failing.delete(item);
    this.failing.set(item, { attempts, retryAtMs: nowMs + retryInMs });
    if (this.failing.size > this.limits.itemsMax) this.failing.delete(this.failing.keys().next().value!);
    return { attempts, retryInMs };
  }

  succeeded(item: string): void {
    this.failing.delete(item);
  }

  /** True when the item may be tried now. */
  due(item: string, nowMs = Date.now()): boolean {
    return (this.failing.get(item)?.retryAtMs ?? 0) <= nowMs;
  }

  /** Items that may not be tried yet (to leave out of the next query); at most itemsMax. */
  waiting(nowMs = Date.now()): string[] {
    const ids: string[] = [];
    for (const [item, f] of this.failing) if (f.retryAtMs > nowMs) ids.push(item);
    return ids;
  }

  get size(): number {
    return this.failing.size;
  }
}

/** baseMs·2^(attempts−1), capped at maxMs (attempts counts from 1). */
export function delayMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30));
}
