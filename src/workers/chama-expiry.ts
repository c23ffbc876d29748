import type { ChamaService } from "../api/chama-service";
import type { Db } from "../../lib/db";
import { log } from "../../lib/log";
import { Pump } from "./pump";

/**
 * Expires chama withdrawal requests that outlived their lifetime, releasing their holds. The
 * chama machine already refuses to approve or continue an overdue request on its own; this makes
 * the hold go away without anyone having to touch the request. Each expiry is keyed by the
 * withdrawal, so several nodes running this at once still expire each request once.
 */
export class ChamaExpiry {
  private readonly pump: Pump;

  constructor(
    private readonly db: Db,
    private readonly chamas: ChamaService,
    pollMs = 15_000,
    private readonly batch = 200,
  ) {
    this.pump = new Pump("chama expiry", async () => (await this.runOnce()) >= this.batch, pollMs);
  }

  /** Expire what is overdue now (by the node's clock); returns how many were expired. */
  async runOnce(): Promise<number> {
    const at = this.chamas.now();
    const due = await this.db`select id, chama_id from chama_withdrawals
      where status in ('pending_approval', 'manual_review', 'approved') and expires_at <= ${at}
      order by expires_at limit ${this.batch}`;
    let expired = 0;
    for (const w of due) {
      const outcome = await this.chamas.system(w.chama_id, `chama-expire:${w.id}`, { type: "withdrawal.expire", withdrawalId: w.id, at });
      if (outcome.status === 200) expired++;
      else if (outcome.status >= 500) log("warn", "chama expiry step failed; will retry", { withdrawalId: w.id, status: outcome.status });
    }
    return expired;
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }
}
