import type { Context, MiddlewareHandler } from "hono";
import { CofferError } from "../errors";
import type { KeyRing } from "../security/keys";
import { scopeOf, type Principal } from "../security/principal";
import { verifyToken, type TokenSettings } from "../security/tokens";
import type { Caller } from "../api/operations";

/** Routes anyone may call: liveness only. */
const PUBLIC_PATHS = new Set(["/health"]);

/**
 * Every other route needs `Authorization: Bearer <token>`; the proven principal rides on the
 * context for the routes and the policy.
 */
export function authenticate(ring: KeyRing, settings: TokenSettings): MiddlewareHandler {
  return async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return next();
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
    if (!match) throw new CofferError("UNAUTHENTICATED", "a valid bearer token is required");
    c.set("principal" as never, (await verifyToken(ring, settings, match[1]!)) as never);
    return next();
  };
}

export function principalOf(c: Context): Principal {
  const p = c.get("principal" as never) as Principal | undefined;
  if (!p) throw new Error("route reached without authentication"); // programmer error: a route outside the middleware
  return p;
}

export function callerOf(c: Context): Caller {
  const principal = principalOf(c);
  return { scope: scopeOf(principal), principal };
}
