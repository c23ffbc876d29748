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
export function scopeOf(p: Principal): string {
  return `${p.role}:${p.sub}`;
}
