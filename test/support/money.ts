import { expect } from "bun:test";

/** USD amounts in tests: cents as bigint, and the API's decimal strings with exactly two places. */

/** Cents → a USD amount string ("0.07", "1000.00"). */
export function usd(minor: bigint): string {
  const s = minor.toString().padStart(3, "0");
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** A USD amount as the API writes it ("12.34", exactly two places) → cents; any other form fails the test. */
export function cents(amount: string): bigint {
  expect(amount).toMatch(/^-?[0-9]+\.[0-9]{2}$/);
  return BigInt(amount.replace(".", ""));
}
