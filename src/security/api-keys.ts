import { createHash, timingSafeEqual } from "node:crypto";
import type { Db, Queryable } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import { LruCache } from "../../lib/lru";
import { PERMISSIONS, type Permission, type Principal } from "../../lib/principal";

/**
 * API keys for services: `cof_<prefix>_<secret>`. The prefix (public) finds the row; the secret is
 * compared by its SHA-256 in constant time. A key acts as role `service` with its permissions,
 * optionally only from some IP blocks, until it expires or is revoked.
 */
const KEY_FORMAT = /^cof_([a-z0-9]{12})_([A-Za-z0-9]{32})$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** Revocation takes effect within this long on every node (the lookup cache's life). */
export const KEY_CACHE_MS = 2_000;
const LAST_USED_EVERY_MS = 60_000;

export interface ApiKeyRow {
  id: string;
  prefix: string;
  secret_sha256: string;
  name: string;
  subject: string;
  permissions: string[];
  rate_limit_per_minute: number | null;
  ip_allowlist: string[] | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  created_by: string;
}

export interface NewApiKey {
  name: string;
  subject: string;
  permissions: Permission[];
  rateLimitPerMinute?: number;
  ipAllowlist?: string[];
  expiresAt?: string;
}

function random(length: number, alphabet: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
  let out = "";
  // Rejection sampling keeps every character equally likely.
  for (const b of bytes) {
    if (b < Math.floor(256 / alphabet.length) * alphabet.length) out += alphabet[b % alphabet.length];
    if (out.length === length) return out;
  }
  return out + random(length - out.length, alphabet);
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export class ApiKeys {
  private readonly cache = new LruCache<string, { row: ApiKeyRow | undefined; at: number }>(10_000);
  private readonly lastUsedWritten = new LruCache<string, number>(10_000);

  constructor(private readonly db: Db) {}

  /** Create a key; the returned `key` is the only time the secret exists outside the caller. */
  async create(input: NewApiKey, createdBy: string, sql: Queryable = this.db): Promise<{ key: string; row: ApiKeyRow }> {
    const prefix = random(12, "abcdefghijklmnopqrstuvwxyz0123456789");
    const secret = random(32, ALPHABET);
    const [row] = await sql`insert into api_keys
      (id, prefix, secret_sha256, name, subject, permissions, rate_limit_per_minute, ip_allowlist, expires_at, created_at, created_by)
      values (${Bun.randomUUIDv7()}, ${prefix}, ${sha256(secret)}, ${input.name}, ${input.subject}, ${input.permissions},
              ${input.rateLimitPerMinute ?? null}, ${input.ipAllowlist ?? null}, ${input.expiresAt ?? null}, now(), ${createdBy})
      returning *`;
    return { key: `cof_${prefix}_${secret}`, row: row as ApiKeyRow };
  }

  async list(): Promise<ApiKeyRow[]> {
    return (await this.db`select * from api_keys order by created_at desc limit 1000`) as unknown as ApiKeyRow[];
  }

  async get(id: string, sql: Queryable = this.db): Promise<ApiKeyRow> {
    const [row] = await sql`select * from api_keys where id = ${id}`;
    if (!row) throw new CofferError("NOT_FOUND", "no such API key");
    return row as ApiKeyRow;
  }

  async revoke(id: string, sql: Queryable = this.db): Promise<ApiKeyRow> {
    const [row] = await sql`update api_keys set revoked_at = coalesce(revoked_at, now()) where id = ${id} returning *`;
    if (!row) throw new CofferError("NOT_FOUND", "no such API key");
    this.cache.set((row as ApiKeyRow).prefix, { row: undefined, at: 0 });
    return row as ApiKeyRow;
  }

  /** A new secret with the same settings; the old key stops working now, or after `overlapSeconds`. */
  async rotate(id: string, overlapSeconds: number, by: string, sql: Queryable = this.db): Promise<{ key: string; row: ApiKeyRow }> {
    const old = await this.get(id, sql);
    if (old.revoked_at) throw new CofferError("INVALID_TRANSITION", "a revoked key cannot be rotated");
    const created = await this.create(
      {
        name: old.name,
        subject: old.subject,
        permissions: old.permissions as Permission[],
        ...(old.rate_limit_per_minute ? { rateLimitPerMinute: old.rate_limit_per_minute } : {}),
        ...(old.ip_allowlist ? { ipAllowlist: old.ip_allowlist } : {}),
        ...(old.expires_at ? { expiresAt: old.expires_at.toISOString() } : {}),
      },
      by,
      sql,
    );
    if (overlapSeconds > 0) {
      await sql`update api_keys set expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => ${overlapSeconds})) where id = ${id}`;
    } else {
      await this.revoke(id, sql);
    }
    this.cache.set(old.prefix, { row: undefined, at: 0 });
    return created;
  }

  /** The principal behind a presented key, or 401 (unknown, wrong, revoked, expired) / 403 (wrong IP). */
  async authenticate(presented: string, clientIp: string | undefined): Promise<{ principal: Principal; key: ApiKeyRow }> {
    const match = KEY_FORMAT.exec(presented);
    if (!match) throw unauthenticated();
    const [, prefix, secret] = match as unknown as [string, string, string];
    const row = await this.lookup(prefix);
    const presentedHash = Buffer.from(sha256(secret), "hex");
    // Compare even when the row is missing, so timing says nothing about which prefixes exist.
    const storedHash = Buffer.from(row?.secret_sha256 ?? "0".repeat(64), "hex");
    if (!timingSafeEqual(presentedHash, storedHash) || !row) throw unauthenticated();
    if (row.revoked_at || (row.expires_at && row.expires_at.getTime() <= Date.now())) throw unauthenticated();
    if (row.ip_allowlist?.length && !(clientIp && row.ip_allowlist.some((cidr) => inCidr(clientIp, cidr)))) {
      throw new CofferError("FORBIDDEN", "this API key may not be used from this address");
    }
    this.touch(row);
    const permissions = new Set(row.permissions.filter((p): p is Permission => (PERMISSIONS as readonly string[]).includes(p)));
    const principal: Principal = { sub: row.subject, role: "service", permissions };
    if (row.rate_limit_per_minute) principal.keyLimit = { keyId: row.id, perMinute: row.rate_limit_per_minute };
    return { principal, key: row };
  }

  private async lookup(prefix: string): Promise<ApiKeyRow | undefined> {
    const cached = this.cache.get(prefix);
    if (cached && Date.now() - cached.at < KEY_CACHE_MS) return cached.row;
    const [row] = await this.db`select * from api_keys where prefix = ${prefix}`;
    this.cache.set(prefix, { row: row as ApiKeyRow | undefined, at: Date.now() });
    return row as ApiKeyRow | undefined;
  }

  /** last_used_at, written at most once a minute per key and never on the request's path. */
  private touch(row: ApiKeyRow): void {
    const last = this.lastUsedWritten.get(row.id) ?? 0;
    if (Date.now() - last < LAST_USED_EVERY_MS) return;
    this.lastUsedWritten.set(row.id, Date.now());
    void this.db`update api_keys set last_used_at = now() where id = ${row.id}`.catch(() => {});
  }
}

export function apiKeyView(row: ApiKeyRow) {
  return {
    id: row.id,
    prefix: `cof_${row.prefix}`,
    name: row.name,
    subject: row.subject,
    permissions: row.permissions,
    rateLimitPerMinute: row.rate_limit_per_minute,
    ipAllowlist: row.ip_allowlist,
    expiresAt: row.expires_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
  };
}

function unauthenticated(): CofferError {
  return new CofferError("UNAUTHENTICATED", "a valid bearer token or API key is required");
}

/** IPv4 and IPv6 CIDR membership (IPv4-mapped IPv6 addresses count as IPv4). */
export function inCidr(ip: string, cidr: string): boolean {
  const [range, bitsText] = cidr.split("/") as [string, string | undefined];
  const a = toBytes(ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip);
  const b = toBytes(range);
  if (!a || !b || a.length !== b.length) return false;
  const bits = bitsText === undefined ? a.length * 8 : Number(bitsText);
  for (let i = 0; i < a.length; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

function toBytes(ip: string): number[] | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    const parts = ip.split(".").map(Number);
    return parts.every((p) => p <= 255) ? parts : undefined;
  }
  if (!ip.includes(":")) return undefined;
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  if (ip.split("::").length > 2 || h.length + t.length > 8) return undefined;
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}
