import { CofferError } from "../errors";
import { LruCache } from "../util/lru";
import type { ApiKeys } from "./api-keys";
import type { KeyRing } from "./keys";
import type { Principal } from "./principal";
import { verifyToken, type TokenSettings } from "./tokens";

/** What a request presents, whatever carried it (HTTP headers, NATS message headers). */
export interface Credentials {
  /** The Authorization header's value. */
  authorization?: string;
  /** The X-Api-Key header's value. */
  apiKey?: string;
  /** The peer's address, where the transport knows it (API-key allowlists need it). */
  ip?: string;
}

/**
 * Credentials to a principal: an access token (`Authorization: Bearer <JWT>`) or an API key
 * (`Authorization: Bearer cof_…` or `X-Api-Key: cof_…`). Anything else is 401.
 *
 * A token's signature is checked once; after that only its expiry can change its answer (the key
 * ring is read at start-up: key-file changes take effect when a node restarts). Bounded, and
 * entries die with their token.
 */
export class Authenticator {
  private readonly tokens = new LruCache<string, { principal: Principal; expiresMs: number }>(10_000);

  constructor(
    private readonly ring: KeyRing,
    private readonly settings: TokenSettings,
    private readonly apiKeys: ApiKeys,
  ) {}

  async principalFor(credentials: Credentials): Promise<Principal> {
    const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(credentials.authorization ?? "")?.[1];
    const apiKey = credentials.apiKey ?? (bearer?.startsWith("cof_") ? bearer : undefined);
    if (apiKey !== undefined) return (await this.apiKeys.authenticate(apiKey, credentials.ip)).principal;
    if (bearer !== undefined) return this.verified(bearer);
    throw new CofferError("UNAUTHENTICATED", "a valid bearer token or API key is required");
  }

  private async verified(token: string): Promise<Principal> {
    const hit = this.tokens.get(token);
    if (hit && hit.expiresMs > Date.now()) return hit.principal;
    const principal = await verifyToken(this.ring, this.settings, token);
    this.tokens.set(token, { principal, expiresMs: expiryMs(token) });
    return principal;
  }
}

/** `exp` of a token already verified (so its payload is known to be well-formed), in ms. */
function expiryMs(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { exp: number };
  return payload.exp * 1000;
}
