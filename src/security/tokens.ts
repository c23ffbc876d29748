import { errors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { CofferError } from "../../lib/errors";
import { TOKEN_ALGORITHM, type KeyRing } from "./keys";
import { PERMISSIONS, ROLES, type Permission, type Principal, type Role } from "../../lib/principal";

export interface TokenSettings {
  issuer: string;
  audience: string;
}

const CLOCK_TOLERANCE_S = 5;
const MAX_TOKEN_LENGTH = 4096;

/**
 * Verify a bearer token: signature by a known, non-retired key (by `kid`), algorithm EdDSA only
 * (`alg: none` and every other algorithm are refused), `exp` required, `nbf` honoured, `iss` and
 * `aud` checked, `sub` and `role` present and valid. Every failure is the same 401 to the caller:
 * which check failed is nobody's business but the logs'.
 */
export async function verifyToken(ring: KeyRing, settings: TokenSettings, token: string): Promise<Principal> {
  if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated();
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(
      token,
      async (header) => {
        const entry = header.kid === undefined ? undefined : ring.verifying.get(header.kid);
        if (!entry || entry.retired) throw new errors.JWKSNoMatchingKey();
        return entry.key;
      },
      {
        algorithms: [TOKEN_ALGORITHM],
        issuer: settings.issuer,
        audience: settings.audience,
        requiredClaims: ["exp", "sub"],
        clockTolerance: CLOCK_TOLERANCE_S,
      },
    ));
  } catch {
    throw unauthenticated();
  }
  const role = payload.role;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) throw unauthenticated();
  if (typeof payload.sub !== "string" || payload.sub.length === 0 || payload.sub.length > 128) throw unauthenticated();
  const perms = Array.isArray(payload.perms) ? payload.perms.filter((p): p is Permission => (PERMISSIONS as readonly string[]).includes(p)) : [];
  return { sub: payload.sub, role: role as Role, permissions: new Set(perms) };
}

export async function mintToken(
  ring: KeyRing,
  settings: TokenSettings,
  claims: { sub: string; role: Role; ttlSeconds: number; permissions?: Permission[] },
): Promise<string> {
  if (!ring.signingKey) throw new Error("this key file has no private key for the active key; it can verify but not mint");
  return new SignJWT({ role: claims.role, ...(claims.permissions?.length ? { perms: claims.permissions } : {}) })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: ring.activeKid, typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds)
    .sign(ring.signingKey);
}

function unauthenticated(): CofferError {
  return new CofferError("UNAUTHENTICATED", "a valid bearer token is required");
}
