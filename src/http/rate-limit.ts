import type { Context, MiddlewareHandler } from "hono";
import type { Config } from "../config";
import { CofferError } from "../errors";
import { RateLimiter, type Tier } from "../security/rate-limit";
import { scopeOf } from "../security/principal";
import { clientIp, principalOf } from "./auth";

/**
 * The rate-limit tiers, all shared across nodes (src/security/rate-limit.ts):
 * - per IP, before anything else, and a lock-out for an IP that keeps failing authentication;
 * - per caller (user, service or API key; an API key's own per-minute limit applies on top);
 * - stricter per-caller tiers for the routes that move money out (payments, withdrawals, transfers).
 */
export interface RateLimits {
  /** Before authentication: per-IP tiers and the auth-failure lock-out. */
  beforeAuth: MiddlewareHandler;
  /** After authentication: per-caller and money tiers. */
  afterAuth: MiddlewareHandler;
  /** Count one failed authentication against the caller's IP. */
  authFailed(c: Context): Promise<void>;
}

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const MONEY_ROUTE = /^\/v1\/(wallets\/[^/]+\/(payments|withdrawals)|transfers)$/;

export function rateLimits(limiter: RateLimiter | undefined, config: Config): RateLimits {
  if (!limiter) return { beforeAuth: (_c, next) => next(), afterAuth: (_c, next) => next(), authFailed: async () => {} };
  const ipTiers: Tier[] = [
    { name: "ip/s", windowMs: S, limit: config.RATE_IP_PER_SECOND },
    { name: "ip/min", windowMs: M, limit: config.RATE_IP_PER_MINUTE },
    { name: "ip/h", windowMs: H, limit: config.RATE_IP_PER_HOUR },
  ];
  const callerTiers: Tier[] = [
    { name: "caller/s", windowMs: S, limit: config.RATE_CALLER_PER_SECOND },
    { name: "caller/min", windowMs: M, limit: config.RATE_CALLER_PER_MINUTE },
    { name: "caller/h", windowMs: H, limit: config.RATE_CALLER_PER_HOUR },
  ];
  const moneyTiers: Tier[] = [
    { name: "money/s", windowMs: S, limit: config.RATE_MONEY_PER_SECOND },
    { name: "money/min", windowMs: M, limit: config.RATE_MONEY_PER_MINUTE },
  ];
  const authFailures: Tier = { name: "authfail/15min", windowMs: 15 * M, limit: config.RATE_AUTH_FAILURES_PER_15_MINUTES };

  const enforce = async (subject: string, tiers: Tier[]) => {
    const verdict = await limiter.hit(subject, tiers);
    if (!verdict.allowed) throw new CofferError("RATE_LIMITED", `too many requests (${verdict.tier}); retry later`, { retryAfter: verdict.retryAfterS });
  };

  return {
    async beforeAuth(c, next) {
      if (c.req.path === "/health") return next();
      const ip = clientIp(c) ?? "unknown";
      if (await limiter.exhausted(ip, authFailures)) {
        throw new CofferError("RATE_LIMITED", "too many failed authentications from this address; retry later", { retryAfter: Math.ceil(authFailures.windowMs / 1000) });
      }
      await enforce(ip, ipTiers);
      return next();
    },
    async afterAuth(c, next) {
      if (c.req.path === "/health") return next();
      const p = principalOf(c);
      const caller = scopeOf(p);
      const tiers = p.keyRateLimitPerMinute ? [...callerTiers, { name: "key/min", windowMs: M, limit: p.keyRateLimitPerMinute }] : callerTiers;
      await enforce(caller, tiers);
      if (c.req.method === "POST" && MONEY_ROUTE.test(c.req.path)) await enforce(caller, moneyTiers);
      return next();
    },
    async authFailed(c) {
      await limiter.hit(clientIp(c) ?? "unknown", [authFailures]);
    },
  };
}
