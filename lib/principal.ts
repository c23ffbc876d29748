/** Who is calling, as proven by an access token or an API key. */
export const ROLES = ["user", "service", "admin", "auditor"] as const;
export type Role = (typeof ROLES)[number];

/** What a `service` may do; users, admins and auditors are governed by their role alone. */
export const PERMISSIONS = [
  "wallets:read",
  "wallets:write",
  "wallets:admin",
  "credits:write",
  "payments:write",
  "withdrawals:read",
  "withdrawals:write",
  "withdrawals:process",
  "transfers:read",
  "transfers:write",
  "chamas:read",
  "chamas:write",
  "deposits:read",
  "deposits:write",
  "webhooks:read",
  "webhooks:write",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface Principal {
  sub: string;
  role: Role;
  permissions: ReadonlySet<Permission>;
  /** Set when the caller is an API key with a limit of its own (counted per key, not per subject). */
  keyLimit?: { keyId: string; perMinute: number };
}

/** Idempotency keys are scoped per caller: two callers can never replay each other's results. */
export function scopeOf(p: { role: string; sub: string }): string {
  return `${p.role}:${p.sub}`;
}

/**
 * Who asked, as it travels with a command to the wallet's or chama's actor, which checks it again
 * (actors/command-policy.ts). `system` is Coffer itself (the transfer saga, the expiry worker): it
 * may send the internal steps no caller can ask for, and nothing else.
 */
export interface PrincipalClaim {
  sub: string;
  role: Role | "system";
  permissions: readonly Permission[];
}

export const SYSTEM_CLAIM: PrincipalClaim = { sub: "coffer", role: "system", permissions: [] };

export function claimOf(p: Principal): PrincipalClaim {
  return { sub: p.sub, role: p.role, permissions: [...p.permissions] };
}

/**
 * Who a principal is inside a chama. A user is their subject, which is what member ids are. Anyone
 * else (a platform admin, a service, an auditor) gets an id no member can have ("#" is not allowed
 * in member ids), so a credential whose subject happens to equal a member's can never act as them:
 * API-key subjects are free text, and group consent must not hang on a name.
 */
export function memberIdOf(p: { sub: string; role: string }): string {
  return p.role === "user" ? p.sub : `${p.role}#${p.sub}`;
}
