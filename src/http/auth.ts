import type { Context, MiddlewareHandler } from "hono";
import { CofferError } from "../errors";
import type { KeyRing } from "../security/keys";
import { scopeOf, type Principal } from "../security/principal";
import { verifyToken, type TokenSettings } from "../security/tokens";
import type { Caller } from "../api/operations";
import { getConnInfo } from "hono/bun";
import type { ApiKeys } from "../security/api-keys";
import { LruCache } from "../util/lru";

/** Routes anyone may call: liveness only. */
const PUBLIC_PATHS = new Set(["/health"]);

/**
 * Every other route needs a credential: `Authorization: Bearer <access token>` for users and
 * operators, or an API key for services (`Authorization: Bearer cof_…` or `X-Api-Key: cof_…`).
 * The proven principal rides on the context for the routes and the policy.
 */
export function authenticate(ring: KeyRing, settings: TokenSettings, apiKeys: ApiKeys): MiddlewareHandler {
  // A token's signature is checked once; after that only its expiry can change its answer (the key
  // ring is fixed for the life of the process). Bounded, and entries die with their token.
  const cache = new LruCache<string, { principal: Principal; expiresMs: number }>(10_000);
  const verified = async (token: string): Promise<Principal> => {
    const hit = cache.get(token);
    if (hit && hit.expiresMs > Date.now()) return hit.principal;
    const principal = await verifyToken(ring, settings, token);
    cache.set(token, { principal, expiresMs: expiryMs(token) });
    return principal;
  };
  return async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return next();
    const header = c.req.header("authorization") ?? "";
    const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header)?.[1];
    const apiKey = c.req.header("x-api-key") ?? (bearer?.startsWith("cof_") ? bearer : undefined);
    let principal: Principal;
    if (apiKey !== undefined) {
      principal = (await apiKeys.authenticate(apiKey, clientIp(c))).principal;
    } else if (bearer !== undefined) {
      principal = await verified(bearer);
    } else {
      throw new CofferError("UNAUTHENTICATED", "a valid bearer token or API key is required");
    }
    c.set("principal" as never, principal as never);
    return next();
  };
}

/** `exp` of a token already verified (so its payload is known to be well-formed), in ms. */
function expiryMs(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { exp: number };
  return payload.exp * 1000;
}

/** The peer's address as the server saw it (no proxy headers are trusted). */
export function clientIp(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined; // not served by Bun.serve (e.g. app.request in a unit test)
  }
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
