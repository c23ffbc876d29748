import { ASSET_SCALE, type Asset } from "./assets";

/**
 * Decimal strings <-> bigint minor units, exactly. Nothing here ever goes through a JS number:
 * "0.1" + "0.2" must be 30 cents, not 0.30000000000000004 dollars.
 */
const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

export type ParseResult = { ok: true; minor: bigint } | { ok: false; reason: string };

/** Parse a positive amount given in major units ("12.34") into minor units, refusing anything inexact. */
export function parseAmount(text: string, asset: Asset, maxMinor: bigint): ParseResult {
  if (typeof text !== "string" || text.length > 100) return { ok: false, reason: "amount must be a decimal string" };
  const match = DECIMAL.exec(text);
  if (!match) return { ok: false, reason: "amount must be a plain decimal string like \"12.34\"" };
  const scale = ASSET_SCALE[asset];
  const whole = match[1]!;
  const fraction = match[2] ?? "";
  if (fraction.length > scale) return { ok: false, reason: `${asset} allows at most ${scale} decimals` };
  const minor = BigInt(whole + fraction.padEnd(scale, "0"));
  if (minor <= 0n) return { ok: false, reason: "amount must be greater than zero" };
  if (minor > maxMinor) return { ok: false, reason: `amount exceeds the maximum of ${formatAmount(maxMinor, asset)}` };
  return { ok: true, minor };
}

/** Minor units to a decimal string with exactly the asset's scale ("0.00" for USD). Keeps the sign. */
export function formatAmount(minor: bigint, asset: Asset): string {
  const scale = ASSET_SCALE[asset];
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${whole}${scale > 0 ? "." + fraction : ""}`;
}

/** The configured ceiling (given in major units, e.g. "1000000000") in an asset's minor units. */
export function maxMinorFor(maxMajor: bigint, asset: Asset): bigint {
  return maxMajor * 10n ** BigInt(ASSET_SCALE[asset]);
}
