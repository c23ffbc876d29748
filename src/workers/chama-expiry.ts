import type { ChamaService } from "../api/chama-service";
import { Backoff } from "../../lib/backoff";
import type { Db } from "../../lib/db";
import { log } from "../../lib/log";
import { EVERYTHING, type Ownership } from "./ownership";
import { Pump } from "./pump";

/**
 * Expires chama withdrawal requests that outlived their lifetime, releasing their holds. The
 * chama machine already refuses to approve or continue an overdue request on its own; this makes
 * the hold go away without anyone having to touch the request. Each expiry is keyed by the
 * withdrawal, so several nodes running this at once still expire each request once.
 *
 * Bounds: `batch` requests a pass; one whose expiry failed (503) waits 1 s, 2 s… up to 5 minutes
 * before it is tried again and is left out of the passes meanwhile, so it never crowds out others.
 */
const RETRY = { baseMs: 1_000, maxMs: 5 * 60_000, itemsMax: 10_000 };

export class ChamaExpiry {
  private readonly pump: Pump;
  private readonly backoff = new Backoff(RETRY);

  constructor(
    private readonly db: Db,
    private readonly chamas: ChamaService,
    pollMs = 15_000,
    private readonly batch = 200,
    /** With several nodes: the background passes run only on the holder of the `chama-expiry` lease (`runOnce` runs wherever it is called). */
    ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("chama expiry", async () => ownership.leads("chama-expiry") && (await this.runOnce()) >= this.batch, pollMs);
  }

  /** Expire what is overdue now (by the node's clock); returns how many were expired. */
  async runOnce(): Promise<number> {
    const at = this.chamas.now();
    const due = await this.db`select id, chama_id from chama_withdrawals
      where status in ('pending_approval', 'manual_review', 'approved') and expires_at <= ${at}
        and id <> all(${this.db.array(this.backoff.waiting())}::uuid[])
      order by expires_at limit ${this.batch}`;
    let expired = 0;
    for (const w of due) {
      const outcome = await this.chamas.system(w.chama_id, `chama-expire:${w.id}`, { type: "chama.withdrawal.expire", withdrawalId: w.id, at });
      if (outcome.status < 500) this.backoff.succeeded(w.id);
      if (outcome.status === 200) expired++;
      else if (outcome.status >= 500) log("warn", "chama expiry step failed; will retry", { withdrawalId: w.id, status: outcome.status, ...this.backoff.failed(w.id) });
    }
    return expired;
  }

  /** Look now rather than at the next poll (this node just took the job over). */
  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }
}
