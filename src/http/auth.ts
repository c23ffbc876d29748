import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/bun";
import type { Caller } from "../api/wallet-service";
import type { AttemptGate, Authenticator, Credentials } from "../security/authenticator";
import { CofferError } from "../../lib/errors";
import { scopeOf, type Principal } from "../../lib/principal";

/**
 * Routes anyone may call: liveness, readiness, the API's reference (src/http/docs.ts) and the
 * operators' dashboard page (src/http/admin-ui.ts: static files that hold no data; its every call
 * to the API carries the operator's own token).
 */
const PUBLIC_PATHS = new Set(["/health", "/ready", "/openapi.json", "/docs", "/admin/ui"]);

/**
 * Webhooks from payment providers: no credential, the provider's signature over the raw body
 * instead (src/http/stripe-webhook.ts checks it before anything is written).
 */
export const WEBHOOK_PATHS = new Set(["/v1/webhooks/stripe"]);

/** A public route, or one of the reference page's or the dashboard's own files (`/docs/…`, `/admin/ui/…`), or a webhook. */
export function isPublicPath(path: string): boolean {
  return PUBLIC_PATHS.has(path) || path.startsWith("/docs/") || path.startsWith("/admin/ui/") || WEBHOOK_PATHS.has(path);
}

/**
 * Every other route needs a credential (see src/security/authenticator.ts); the proven principal
 * rides on the context for the routes and the policy. `failed` hears of every refused credential
 * (401) before the refusal goes on (the rate limits count them against the address).
 */
export function authenticate(authenticator: Authenticator, failed?: (c: Context) => Promise<void>): MiddlewareHandler {
  return async (c, next) => {
    if (isPublicPath(c.req.path)) return next();
    let principal: Principal;
    try {
      principal = await authenticator.principalFor(credentialsOf(c), attemptGateOf(c));
    } catch (error) {
      if (failed && error instanceof CofferError && error.code === "UNAUTHENTICATED") await failed(c);
      throw error;
    }
    c.set("principal" as never, principal as never);
    return next();
  };
}

/**
 * What the request presents. The peer's address is looked up only if asked for (an API key with an
 * allowlist): a token already verified needs nothing but the header.
 */
function credentialsOf(c: Context): Credentials {
  const raw = c.req.raw.headers;
  return {
    authorization: raw.get("authorization") ?? undefined,
    apiKey: raw.get("x-api-key") ?? undefined,
    get ip() {
      return clientIp(c);
    },
  };
}

/**
 * The gate every unverified credential of this request passes (see AttemptGate), put on the
 * context by the rate limits before authentication; none when rate limits are off.
 */
export function setAttemptGate(c: Context, gate: AttemptGate): void {
  c.set("attemptGate" as never, gate as never);
}

export function attemptGateOf(c: Context): AttemptGate | undefined {
  return c.get("attemptGate" as never) as AttemptGate | undefined;
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
