import { createHash } from "node:crypto";

/**
 * A UUID (version 8, "custom") derived from a caller's idempotency key. Creating a wallet twice with
 * the same key addresses the same actor, so the duplicate is serialized behind the first and replays
 * its result, on any node, without a lock.
 */
export function idFromKey(purpose: string, scope: string, key: string): string {
  const bytes = createHash("sha256").update(`coffer:${purpose}\u0000${scope}\u0000${key}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function newId(): string {
  return Bun.randomUUIDv7();
}

/**
 * Stable keyed hash of what a request asked for; the same key with another fingerprint is a
 * conflict. Keyed (HMAC, see Vault.mac) because requests carry account numbers: a plain hash of a
 * low-entropy field could be brute-forced back from the stored fingerprint.
 */
export function fingerprint(mac: (text: string) => string, operation: string, target: string, normalized: unknown): string {
  return mac(`${operation}\n${target}\n${JSON.stringify(normalized, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}`);
}
