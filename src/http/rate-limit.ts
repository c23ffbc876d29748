import type { Context, MiddlewareHandler } from "hono";
import type { Config } from "../config";
import { CofferError } from "../../lib/errors";
import { enforce, enforceCaller, RateLimiter, tiersFrom } from "../security/rate-limit";
import { scopeOf } from "../../lib/principal";
import { attemptGateOf, clientIp, isPublicPath, principalOf, setAttemptGate } from "./auth";

/**
 * The rate-limit tiers, all shared across nodes (src/security/rate-limit.ts):
 * - per IP, before anything else, and a lock-out for an IP that keeps failing authentication: an
 *   address already over it is refused outright, and every credential not already known good takes
 *   a hit from the auth-failure tier before it is verified (given back when it proves good), so no
 *   more than the limit can be verified however many attempts arrive at once;
 * - per caller (user, service or API key; an API key's own per-minute limit applies on top);
 * - the stricter money tier, per caller, for operations that move money out: the operation table
 *   says which (`tier: "money"`), and src/api/execute.ts applies it for every transport.
 */
export interface RateLimits {
  /** Before authentication: per-IP tiers and the auth-failure lock-out. */
  beforeAuth: MiddlewareHandler;
  /** After authentication: per-caller and money tiers. */
  afterAuth: MiddlewareHandler;
  /** Count one failed authentication against the caller's IP, unless the attempt gate already has. */
  authFailed(c: Context): Promise<void>;
}

export function rateLimits(limiter: RateLimiter | undefined, config: Config): RateLimits {
  if (!limiter) return { beforeAuth: (_c, next) => next(), afterAuth: (_c, next) => next(), authFailed: async () => {} };
  const tiers = tiersFrom(config);

  return {
    async beforeAuth(c, next) {
      if (c.req.path === "/health") return next();
      const ip = clientIp(c) ?? "unknown";
      if (await limiter.exhausted(ip, tiers.authFailures)) throw lockedOut();
      await enforce(limiter, ip, tiers.ip);
      setAttemptGate(c, {
        async enter() {
          const claim = await limiter.claim(ip, tiers.authFailures);
          if (!claim.allowed) throw lockedOut();
          return claim.release;
        },
      });
      return next();
    },
    async afterAuth(c, next) {
      // Public routes have no caller; the per-IP tiers above still limit them (all but /health).
      if (isPublicPath(c.req.path)) return next();
      const p = principalOf(c);
      const caller = scopeOf(p);
      await enforceCaller(limiter, tiers, caller, p);
      return next();
    },
    async authFailed(c) {
      if (attemptGateOf(c)) return; // counted before it was verified, and kept because it failed
      await limiter.hit(clientIp(c) ?? "unknown", [tiers.authFailures]);
    },
  };

  function lockedOut(): CofferError {
    limiter?.onRefused?.(tiers.authFailures.name);
    return new CofferError("RATE_LIMITED", "too many failed authentications from this address; retry later", { retryAfter: Math.ceil(tiers.authFailures.windowMs / 1000) });
  }
}
