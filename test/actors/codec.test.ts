import { expect, test } from "bun:test";
import { decode, encode, tagBigints } from "../../actors/codec";

test("encode writes exactly what a bigint replacer would, and decode brings the bigints back", () => {
  const at = new Date("2026-11-30T12:00:00Z");
  const value = {
    posted: 12345678901234567890n,
    nested: { list: [1n, "2", { deep: -3n }, null], empty: {}, at },
    withdrawals: { w1: { amount: 0n, status: "requested" } },
    text: "a \"quoted\" ünïcode string",
    missing: undefined,
  };
  const replacer = JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
  expect(encode(value)).toBe(replacer);
  expect(JSON.stringify({ snapshot: tagBigints(value) })).toBe(`{"snapshot":${replacer}}`);
  expect(decode<typeof value>(encode(value))).toEqual({ ...value, nested: { ...value.nested, at: at.toISOString() as unknown as Date }, missing: undefined });
});

test("tagBigints copies: the value it was given is left as it was", () => {
  const value = { posted: 5n, list: [6n] };
  tagBigints(value);
  expect(value).toEqual({ posted: 5n, list: [6n] });
});
