/**
 * JSON that keeps bigints exact. Snapshots hold money as bigint; JSON has no such type, so a
 * bigint travels as {"$bigint": "123"} and comes back as 123n.
 */
export function encode(value: unknown): string {
  return JSON.stringify(tagBigints(value));
}

/**
 * The value as `encode` writes it, as objects: each bigint as {"$bigint": "123"}. Objects and
 * arrays are copied as JSON.stringify would walk them (own enumerable keys); one with a `toJSON`
 * (a Date) is kept for JSON.stringify to write as usual. Several times cheaper than a
 * JSON.stringify replacer, and than encoding and parsing back, for a value that goes inside a
 * larger JSON document.
 */
export function tagBigints(value: unknown): unknown {
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(tagBigints);
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = tagBigints((value as Record<string, unknown>)[key]);
  return out;
}

export function decode<T>(text: string): T {
  return JSON.parse(text, (_key, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) && typeof v.$bigint === "string" && Object.keys(v).length === 1
      ? BigInt(v.$bigint)
      : v,
  ) as T;
}
