import type { Db } from "../../../lib/db";
import { CofferError } from "../../../lib/errors";
import { assetLimits, withdrawalFee, type Networks } from "./config";

/**
 * Request-time limits of the networks Coffer pays itself (NETWORKS_FILE, per asset): per payout
 * minimum and maximum, per wallet per UTC day, per network per UTC day. At a limit a withdrawal is
 * allowed; one unit over it is 422 LIMIT_EXCEEDED, and nothing is held or reserved.
 *
 * Daily limits are reservations (`chain_limit_usage`, `chain_limit_reservations`): each request adds
 * its amount to every limited scope of its day in one transaction, conditional on staying at or
 * under the limit, so concurrent requests can never pass a limit together. A request is reserved
 * once per (wallet, idempotency key): a retry of it reserves nothing again. A request the wallet
 * refuses, and a payout that fails without paying, give their amount back.
 */
export class ChainLimits {
  constructor(
    private readonly db: Db,
    private readonly networks: Networks,
  ) {}

  /** Whether Coffer pays `asset` on `network` itself (NETWORKS_FILE carries it): processors may not step such withdrawals. */
  paidOnChain(network: string, asset: string): boolean {
    const n = this.networks[network];
    return Boolean(n && (n.assets as Record<string, unknown>)[asset]);
  }

  /**
   * Throws LIMIT_EXCEEDED, or reserves the amount. Returns the reservation (undefined when nothing
   * was limited); `fresh` when this call made it (a retry under the same key finds it made already,
   * and must not give back what its first call reserved).
   */
  async reserve(p: { walletId: string; key: string; network: string; asset: string; amountMinor: bigint }): Promise<{ reservation: string; fresh: boolean } | undefined> {
    const fee = withdrawalFee(this.networks, p.network, p.asset);
    if (fee > 0n && p.amountMinor <= fee) {
      throw new CofferError("LIMIT_EXCEEDED", `not more than the withdrawal fee of ${fee} (smallest units) for ${p.asset} on ${p.network}: nothing would be sent`);
    }
    const limits = assetLimits(this.networks, p.network, p.asset);
    if (!limits) return undefined;
    if (limits.perPayoutMinMinor !== undefined && p.amountMinor < limits.perPayoutMinMinor) {
      throw new CofferError("LIMIT_EXCEEDED", `below the minimum payout of ${limits.perPayoutMinMinor} (smallest units) for ${p.asset} on ${p.network}`);
    }
    if (limits.perPayoutMaxMinor !== undefined && p.amountMinor > limits.perPayoutMaxMinor) {
      throw new CofferError("LIMIT_EXCEEDED", `over the maximum payout of ${limits.perPayoutMaxMinor} (smallest units) for ${p.asset} on ${p.network}`);
    }
    const scopes: { scope: string; limit: bigint; what: string }[] = [];
    if (limits.perWalletPerDayMinor !== undefined) {
      scopes.push({ scope: `wallet:${p.walletId}:${p.network}:${p.asset}`, limit: limits.perWalletPerDayMinor, what: "this wallet's daily limit" });
    }
    if (limits.perNetworkPerDayMinor !== undefined) {
      scopes.push({ scope: `network:${p.network}:${p.asset}`, limit: limits.perNetworkPerDayMinor, what: "the network's daily limit" });
    }
    if (!scopes.length) return undefined;
    const reservation = `${p.walletId}:${p.key}`;
    return this.db.begin(async (tx) => {
      const [already] = await tx`select 1 from chain_limit_reservations where reservation = ${reservation} and not released limit 1`;
      if (already) return { reservation, fresh: false };
      const [{ day }] = (await tx`select (now() at time zone 'utc')::date::text as day`) as unknown as [{ day: string }];
      for (const s of scopes) {
        await tx`insert into chain_limit_usage (scope, day, used) values (${s.scope}, ${day}, 0) on conflict do nothing`;
        const taken = await tx`update chain_limit_usage set used = used + ${p.amountMinor.toString()}
          where scope = ${s.scope} and day = ${day} and used + ${p.amountMinor.toString()} <= ${s.limit.toString()} returning used`;
        if (!taken.length) throw new CofferError("LIMIT_EXCEEDED", `over ${s.what} of ${s.limit} (smallest units) of ${p.asset} on ${p.network} for today (UTC)`);
        await tx`insert into chain_limit_reservations (reservation, scope, day, amount) values (${reservation}, ${s.scope}, ${day}, ${p.amountMinor.toString()})
          on conflict (reservation, scope) do update set amount = excluded.amount, day = excluded.day, released = false`;
      }
      return { reservation, fresh: true };
    });
  }

  /** The request was answered with a withdrawal: later failures release by its id. */
  async bind(reservation: string, withdrawalId: string): Promise<void> {
    await this.db`update chain_limit_reservations set withdrawal_id = ${withdrawalId} where reservation = ${reservation} and withdrawal_id is null`;
  }

  /** Gives a refused request's amounts back (once). */
  async release(reservation: string): Promise<void> {
    await this.releaseWhere(this.db`reservation = ${reservation}`);
  }

  /** Gives a failed payout's amounts back (once). */
  async releaseWithdrawal(withdrawalId: string): Promise<void> {
    await this.releaseWhere(this.db`withdrawal_id = ${withdrawalId}`);
  }

  private async releaseWhere(where: ReturnType<Db>): Promise<void> {
    await this.db.begin(async (tx) => {
      const released = await tx`update chain_limit_reservations set released = true where ${where} and not released returning scope, day::text as day, amount::text as amount`;
      for (const r of released) {
        await tx`update chain_limit_usage set used = greatest(used - ${r.amount as string}, 0) where scope = ${r.scope as string} and day = ${r.day as string}`;
      }
    });
  }
}
