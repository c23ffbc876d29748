import type { Db } from "../lib/db";
import { idempotencyId } from "./envelope";
import { CommitRefusedError, FencedError, KeysTakenError } from "./store-errors";
import { commitWrites, type BatchWrite } from "./wallet-store";

interface Pending {
  write: BatchWrite;
  resolve: (version: number) => void;
  reject: (error: Error) => void;
}

export interface CommitQueueLimits {
  /** Transactions in flight at once. Writes arriving meanwhile wait and go out together. */
  inFlightMax: number;
  /** Batches (each from a different wallet) in one transaction at most. */
  writesMax: number;
  /**
   * Batches waiting for a transaction at most (each wallet actor hands over one batch at a time, so
   * this is also how many wallets may wait). One more is refused at once with CommitRefusedError:
   * its actor answers 503 OVERLOADED and nothing is written.
   */
  waitingMax: number;
}

/**
 * Group commit across wallets. Each actor hands over one batch at a time; batches from different
 * actors that wait here together are written in one transaction. A busy wallet already batches its
 * own commands; this makes many quiet wallets cost a few commits per second instead of one each.
 * A wallet that was fenced or whose key was taken does not sink the others: it is answered, and
 * the rest are committed again without it.
 */
export class CommitQueue {
  private waiting: Pending[] = [];
  private inFlight = 0;
  /** Running totals, for operators and the benchmark: how well commits are being shared. */
  readonly stats = { transactions: 0, batches: 0, busyMs: 0, refused: 0 };

  constructor(
    private readonly db: Db,
    private readonly limits: CommitQueueLimits,
    /** The writer; tests may watch it, production uses commitWrites. */
    private readonly write: typeof commitWrites = commitWrites,
  ) {}

  commit(write: BatchWrite): Promise<number> {
    if (this.waiting.length >= this.limits.waitingMax) {
      this.stats.refused++;
      return Promise.reject(new CommitRefusedError(`${this.waiting.length} wallet batches are already waiting to commit`));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ write, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.limits.inFlightMax && this.waiting.length) {
      const group = this.takeGroup();
      this.inFlight++;
      void this.flush(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /**
   * The next group, oldest first. Two batches that carry the same idempotency key (one key sent to
   * two wallets at once) never share a transaction: inside one statement the second would be
   * silently skipped instead of being seen as taken. The later one waits for the next group.
   */
  private takeGroup(): Pending[] {
    const group: Pending[] = [];
    const later: Pending[] = [];
    const keys = new Set<string>();
    for (const p of this.waiting) {
      const ids = p.write.keyed.map((k) => idempotencyId(k.idempotency));
      if (group.length < this.limits.writesMax && !ids.some((id) => keys.has(id))) {
        group.push(p);
        for (const id of ids) keys.add(id);
      } else {
        later.push(p);
      }
    }
    this.waiting = later;
    return group;
  }

  private async flush(group: Pending[]): Promise<void> {
    let remaining = group;
    try {
      // Each round either commits everything left or answers at least one wallet, so it ends.
      while (remaining.length) {
        const started = performance.now();
        const report = await this.write(this.db, remaining.map((p) => p.write));
        this.stats.transactions++;
        this.stats.batches += remaining.length;
        this.stats.busyMs += performance.now() - started;
        if (report.ok) {
          for (const p of remaining) p.resolve(report.versions.get(p.write.id)!);
          return;
        }
        const next: Pending[] = [];
        for (const p of remaining) {
          const id = p.write.id;
          if (report.fenced.has(id)) p.reject(new FencedError(id, p.write.fromVersion));
          else if (report.taken.has(id)) p.reject(new KeysTakenError(report.taken.get(id)!));
          else next.push(p);
        }
        remaining = next;
      }
    } catch (error) {
      // The database failed (or the commit's fate is unknown): every batch in it must be treated
      // as not acknowledged. The actors reload and their callers may retry with the same keys.
      for (const p of remaining) p.reject(error as Error);
    }
  }
}
