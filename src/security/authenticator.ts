import { createHash } from "node:crypto";
import { CofferError } from "../../lib/errors";
import { log, reason } from "../../lib/log";
import { LruCache } from "../../lib/lru";
import type { ApiKeys } from "./api-keys";
import type { KeyRing } from "./keys";
import type { Principal } from "../../lib/principal";
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
 * What stands before every verification whose answer is not already known: the transport's
 * lock-out of an address that keeps failing (src/http/rate-limit.ts). `enter` counts the attempt
 * atomically before anything is verified, or throws (RATE_LIMITED) when none is left; it resolves
 * to the function that un-counts the attempt, called when the attempt turns out not to be a failed
 * authentication.
 */
export interface AttemptGate {
  enter(): Promise<() => Promise<void>>;
}

/**
 * Credentials to a principal: an access token (`Authorization: Bearer <JWT>`) or an API key
 * (`Authorization: Bearer cof_…` or `X-Api-Key: cof_…`). Anything else is 401.
 *
 * A token's signature is checked once; after that only its expiry can change its answer (the key
 * ring is read at start-up: key-file changes take effect when a node restarts). Bounded, and
 * entries die with their token.
 *
 * With a gate, every other attempt is counted before it is verified and un-counted unless it
 * fails authentication, so attempts sent all at once can never outrun the lock-out. A token
 * already verified, or an API key that has authenticated on this node and not failed since,
 * is known good and does not pass the gate (the key is still checked in full every time).
 */
export class Authenticator {
  private readonly tokens = new LruCache<string, { principal: Principal; expiresMs: number }>(10_000);
  /** By the SHA-256 of the presented key (never the key itself): whether it last authenticated. */
  private readonly provenKeys = new LruCache<string, boolean>(10_000);

  constructor(
    private readonly ring: KeyRing,
    private readonly settings: TokenSettings,
    private readonly apiKeys: ApiKeys,
  ) {}

  async principalFor(credentials: Credentials, gate?: AttemptGate): Promise<Principal> {
    const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(credentials.authorization ?? "")?.[1];
    const apiKey = credentials.apiKey ?? (bearer?.startsWith("cof_") ? bearer : undefined);
    if (apiKey === undefined && bearer !== undefined) {
      const hit = this.tokens.get(bearer);
      if (hit && hit.expiresMs > Date.now()) return hit.principal;
    }
    const keyHash = apiKey === undefined ? undefined : createHash("sha256").update(apiKey).digest("hex");
    const known = keyHash !== undefined && this.provenKeys.get(keyHash) === true;
    const uncount = gate && !known ? await gate.enter() : undefined;
    let failed = false;
    try {
      const principal = await this.verify(credentials, bearer, apiKey);
      if (keyHash !== undefined) this.provenKeys.set(keyHash, true);
      return principal;
    } catch (error) {
      failed = error instanceof CofferError && error.code === "UNAUTHENTICATED";
      if (failed && keyHash !== undefined) this.provenKeys.set(keyHash, false);
      throw error;
    } finally {
      // A good credential (or a refusal that is not about the credential: a wrong address, the
      // database down) does not count; failing to give it back only errs on the side of refusing.
      if (uncount && !failed) await uncount().catch((error) => log("warn", "auth attempt not un-counted", { error: reason(error) }));
    }
  }

  private async verify(credentials: Credentials, bearer: string | undefined, apiKey: string | undefined): Promise<Principal> {
    if (apiKey !== undefined) return (await this.apiKeys.authenticate(apiKey, credentials.ip)).principal;
    if (bearer === undefined) throw new CofferError("UNAUTHENTICATED", "a valid bearer token or API key is required");
    const principal = await verifyToken(this.ring, this.settings, bearer);
    this.tokens.set(bearer, { principal, expiresMs: expiryMs(bearer) });
    return principal;
  }
}

/** `exp` of a token already verified (so its payload is known to be well-formed), in ms. */
function expiryMs(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { exp: number };
  return payload.exp * 1000;
}
