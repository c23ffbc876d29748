/**
 * JSON that keeps bigints exact. Snapshots hold money as bigint; JSON has no such type, so a
 * bigint travels as {"$bigint": "123"} and comes back as 123n.
 */
export function encode(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
}

export function decode<T>(text: string): T {
  return JSON.parse(text, (_key, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) && typeof v.$bigint === "string" && Object.keys(v).length === 1
      ? BigInt(v.$bigint)
      : v,
  ) as T;
}
