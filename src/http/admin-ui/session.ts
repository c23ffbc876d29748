/**
 * The operator's token: pasted at sign-in, kept in sessionStorage only (gone when the tab closes,
 * never in localStorage or a cookie, so nothing sends it implicitly), removed at sign-out. The
 * claims are read here only to draw the page (an auditor gets no buttons); the node verifies the
 * token on every call and its policy decides, whatever the page shows.
 */
const KEY = "coffer.admin.token";

export type OperatorRole = "admin" | "auditor";

export interface Session {
  token: string;
  sub: string;
  role: OperatorRole;
  /** Seconds since the epoch. */
  exp: number | undefined;
}

export function claimsOf(token: string): { sub?: unknown; role?: unknown; exp?: unknown } | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const json = atob(parts[1]!.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1]!.length / 4) * 4, "="));
    const claims = JSON.parse(json) as unknown;
    return typeof claims === "object" && claims !== null ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A session for `token`, or why it cannot be one (before the node is even asked). */
export function sessionFor(token: string): Session | string {
  const trimmed = token.trim().replace(/^Bearer\s+/i, "");
  if (!trimmed) return "Paste an operator's token.";
  const claims = claimsOf(trimmed);
  if (!claims) return "That is not a bearer token (a JWT, as `bun run coffer token` prints).";
  if (claims.role !== "admin" && claims.role !== "auditor") return "The dashboard is for admins and auditors; this token is for another role.";
  if (typeof claims.sub !== "string") return "The token names no subject.";
  const exp = typeof claims.exp === "number" ? claims.exp : undefined;
  if (exp !== undefined && exp * 1000 < Date.now()) return "This token has expired.";
  return { token: trimmed, sub: claims.sub, role: claims.role, exp };
}

export function load(): Session | undefined {
  const token = sessionStorage.getItem(KEY);
  if (!token) return undefined;
  const session = sessionFor(token);
  if (typeof session === "string") {
    sessionStorage.removeItem(KEY);
    return undefined;
  }
  return session;
}

export function save(session: Session): void {
  sessionStorage.setItem(KEY, session.token);
}

export function forget(): void {
  sessionStorage.removeItem(KEY);
}
