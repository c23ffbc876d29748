import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import type { Principal } from "../../lib/principal";

/**
 * Sliding-window rate limits that hold across nodes. Each tier has a window (1 s, 1 min, 1 h …)
 * and a limit. The estimate is the classic sliding-window counter: hits in the current fixed
 * window plus the previous window's hits weighted by how much of it still overlaps.
 *
 * Shared state lives in Postgres (`rate_windows`), but not one write per request: a node reserves
 * a slice of the allowance (about a twentieth of the limit, at least 1) in one atomic statement and
 * spends it locally. The row never grants more than the limit, so two nodes together can never
 * exceed it; a slice a node does not use is simply lost (it errs on the side of refusing).
 */
export interface Tier {
  name: string;
  windowMs: number;
  /** Hits allowed per sliding window. */
  maxHits: number;
}

export interface Verdict {
  allowed: boolean;
  /** Seconds until a refused caller may try again. */
  retryAfterS: number;
  tier?: string;
}

/** A hit taken ahead of an attempt (see RateLimiter.claim). */
export interface Claim extends Verdict {
  /** Give the hit back: the attempt does not count. Once at most; a no-op when it was refused. */
  release(): Promise<void>;
}

const SLICE_DIVISOR = 20;
const LOCAL_MAX = 50_000;
/** Reservations one hit may wait for (each grants at least one unit or ends the loop). */
const MAX_ROUNDS = 64;

export class RateLimiter {
  /** Unspent reserved allowance, by bucket and window. */
  private readonly local = new Map<string, number>();
  /** One reservation in flight per bucket and window; concurrent callers share it. */
  private readonly reserving = new Map<string, Promise<number>>();
  /** Told the tier's name of every request refused with 429 (the node's metrics); unset: nobody listens. */
  onRefused: ((tier: string) => void) | undefined;

  constructor(private readonly db: Db) {}

  /** Take one hit from every tier for `subject`; refused at the first tier that is spent. */
  async hit(subject: string, tiers: readonly Tier[], now = Date.now()): Promise<Verdict> {
    for (const tier of tiers) {
      if (!(await this.take(`${tier.name}:${subject}`, tier, now))) {
        return { allowed: false, retryAfterS: Math.max(1, Math.ceil((windowStart(tier, now) + tier.windowMs - now) / 1000)), tier: tier.name };
      }
    }
    return { allowed: true, retryAfterS: 0 };
  }

  /** Whether `subject` is currently over `tier`, without spending anything (for lock-outs). */
  async exhausted(subject: string, tier: Tier, now = Date.now()): Promise<boolean> {
    const start = windowStart(tier, now);
    const rows = await this.db`select window_start, used from rate_windows
      where bucket = ${`${tier.name}:${subject}`} and window_start in (${start}, ${start - tier.windowMs})`;
    const current = Number(rows.find((r) => Number(r.window_start) === start)?.used ?? 0);
    const previous = Number(rows.find((r) => Number(r.window_start) === start - tier.windowMs)?.used ?? 0);
    return current + Math.ceil(previous * overlap(tier, now)) >= tier.maxHits;
  }

  /**
   * One hit from `tier` for `subject`, taken before an attempt whose outcome is not known yet (a
   * credential about to be verified): concurrent attempts each take their own hit atomically, so
   * no more than the limit can ever be under way or done, however many arrive at once. When the
   * attempt turns out not to count (the credential was good), `release` gives the hit back to the
   * shared row, where every node can take it again.
   */
  async claim(subject: string, tier: Tier, now = Date.now()): Promise<Claim> {
    const verdict = await this.hit(subject, [tier], now);
    if (!verdict.allowed) return { ...verdict, release: async () => {} };
    const bucket = `${tier.name}:${subject}`;
    const start = windowStart(tier, now);
    let released = false;
    return {
      ...verdict,
      release: async () => {
        if (released) return;
        released = true;
        await this.db`update rate_windows set used = used - 1 where bucket = ${bucket} and window_start = ${start} and used > 0`;
      },
    };
  }

  private async take(bucket: string, tier: Tier, now: number): Promise<boolean> {
    const slot = `${bucket}@${windowStart(tier, now)}`;
    // Spend locally; when the local slice is gone, reserve another (or join the reservation already
    // under way) and try again, until a reservation comes back empty: then the window is spent.
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (this.spend(slot)) return true;
      let pending = this.reserving.get(slot);
      if (!pending) {
        pending = this.reserve(bucket, tier, now)
          .then((granted) => {
            if (this.local.size > LOCAL_MAX) this.local.clear(); // old windows: nothing in them is spendable any more
            this.local.set(slot, (this.local.get(slot) ?? 0) + granted);
            return granted;
          })
          .finally(() => this.reserving.delete(slot));
        this.reserving.set(slot, pending);
      }
      if ((await pending) === 0) return this.spend(slot);
    }
    return this.spend(slot);
  }

  private spend(slot: string): boolean {
    const left = this.local.get(slot) ?? 0;
    if (left <= 0) return false;
    this.local.set(slot, left - 1);
    return true;
  }

  /** Reserve up to a slice of the window's allowance; returns how much was granted (0: spent). */
  private async reserve(bucket: string, tier: Tier, now: number): Promise<number> {
    const start = windowStart(tier, now);
    const want = Math.max(1, Math.floor(tier.maxHits / SLICE_DIVISOR));
    const weight = overlap(tier, now);
    const [row] = await this.db`
      with prev as (
        select ceil(coalesce((select used from rate_windows where bucket = ${bucket} and window_start = ${start - tier.windowMs}), 0) * ${weight}::float8)::int as used
      )
      insert into rate_windows as c (bucket, window_start, used, last_grant)
      select ${bucket}, ${start}, g, g from (select greatest(0, least(${want}::int, ${tier.maxHits}::int - (select used from prev))) as g) x
      on conflict (bucket, window_start) do update
        set last_grant = greatest(0, least(${want}::int, ${tier.maxHits}::int - (select used from prev) - c.used)),
            used = c.used + greatest(0, least(${want}::int, ${tier.maxHits}::int - (select used from prev) - c.used))
      returning last_grant`;
    return Number(row!.last_grant);
  }
}

function windowStart(tier: Tier, now: number): number {
  return Math.floor(now / tier.windowMs) * tier.windowMs;
}

/** How much of the previous window still lies inside a sliding window ending now. */
function overlap(tier: Tier, now: number): number {
  return 1 - (now - windowStart(tier, now)) / tier.windowMs;
}

const S = 1000;
const M = 60 * S;
const H = 60 * M;

export interface TierSettings {
  RATE_IP_PER_SECOND: number;
  RATE_IP_PER_MINUTE: number;
  RATE_IP_PER_HOUR: number;
  RATE_CALLER_PER_SECOND: number;
  RATE_CALLER_PER_MINUTE: number;
  RATE_CALLER_PER_HOUR: number;
  RATE_MONEY_PER_SECOND: number;
  RATE_MONEY_PER_MINUTE: number;
  RATE_AUTH_FAILURES_PER_15_MINUTES: number;
}

/** The configured tiers, the same for every transport. */
export function tiersFrom(config: TierSettings) {
  return {
    ip: [
      { name: "ip/s", windowMs: S, maxHits: config.RATE_IP_PER_SECOND },
      { name: "ip/min", windowMs: M, maxHits: config.RATE_IP_PER_MINUTE },
      { name: "ip/h", windowMs: H, maxHits: config.RATE_IP_PER_HOUR },
    ] as Tier[],
    caller: [
      { name: "caller/s", windowMs: S, maxHits: config.RATE_CALLER_PER_SECOND },
      { name: "caller/min", windowMs: M, maxHits: config.RATE_CALLER_PER_MINUTE },
      { name: "caller/h", windowMs: H, maxHits: config.RATE_CALLER_PER_HOUR },
    ] as Tier[],
    money: [
      { name: "money/s", windowMs: S, maxHits: config.RATE_MONEY_PER_SECOND },
      { name: "money/min", windowMs: M, maxHits: config.RATE_MONEY_PER_MINUTE },
    ] as Tier[],
    authFailures: { name: "authfail/15min", windowMs: 15 * M, maxHits: config.RATE_AUTH_FAILURES_PER_15_MINUTES } as Tier,
  };
}

/** Hits for `caller` against its tiers, then against its API key's own per-minute limit, if any. */
export async function enforceCaller(limiter: RateLimiter, tiers: ReturnType<typeof tiersFrom>, caller: string, p: Principal): Promise<void> {
  await enforce(limiter, caller, tiers.caller);
  if (p.keyLimit) await enforce(limiter, p.keyLimit.keyId, [{ name: "key/min", windowMs: M, maxHits: p.keyLimit.perMinute }]);
}

/** One hit against `tiers` for `subject`, as a 429 RATE_LIMITED when refused. */
export async function enforce(limiter: RateLimiter, subject: string, tiers: Tier[]): Promise<void> {
  const verdict = await limiter.hit(subject, tiers);
  if (!verdict.allowed) {
    limiter.onRefused?.(verdict.tier ?? "unknown");
    throw new CofferError("RATE_LIMITED", `too many requests (${verdict.tier}); retry later`, { retryAfter: verdict.retryAfterS });
  }
}
