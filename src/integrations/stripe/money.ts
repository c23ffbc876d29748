import { ASSET_SCALE, type Asset } from "../../../lib/assets";

/**
 * Stripe counts money in integers of a currency's smallest unit, as Coffer does: 1234 is $12.34.
 * The assets Coffer takes by card, each with Stripe's currency code and the number of decimals
 * Stripe uses for it, which must be the asset's scale: then a Stripe amount IS a Coffer amount,
 * and nothing is ever multiplied, divided or rounded on the way (checked below, at load).
 * Coins are not taken by card.
 */
const CARD_CURRENCIES = {
  USD: { currency: "usd", decimals: 2 },
  EUR: { currency: "eur", decimals: 2 },
  KES: { currency: "kes", decimals: 2 },
} as const satisfies Partial<Record<Asset, { currency: string; decimals: number }>>;

export type CardAsset = keyof typeof CARD_CURRENCIES;

for (const [asset, { decimals }] of Object.entries(CARD_CURRENCIES)) {
  if (ASSET_SCALE[asset as Asset] !== decimals) throw new Error(`${asset}: Stripe counts ${decimals} decimals, Coffer ${ASSET_SCALE[asset as Asset]}`);
}

export function isCardAsset(asset: string): asset is CardAsset {
  return Object.hasOwn(CARD_CURRENCIES, asset);
}

/** Stripe's lower-case currency code for an asset taken by card. */
export function stripeCurrencyOf(asset: CardAsset): string {
  return CARD_CURRENCIES[asset].currency;
}

/** The asset a Stripe currency code stands for, upper-cased as Coffer writes it ("usd" → "USD"); the code itself when Coffer has no such asset. */
export function assetOfCurrency(currency: unknown): string {
  return typeof currency === "string" ? currency.toUpperCase() : "";
}

/**
 * Minor units for the SDK, which takes a JavaScript number: exact only for safe integers, so
 * anything beyond is refused rather than rounded (Stripe's own limits are far below).
 */
export function toStripeAmount(minor: bigint): number {
  if (minor <= 0n || minor > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`amount ${minor} cannot be sent to Stripe exactly`);
  return Number(minor);
}

/**
 * An amount Stripe sent (a JSON number of minor units) as bigint, or undefined when it is not a
 * non-negative safe integer: a fraction or an unsafe integer is never turned into money.
 */
export function fromStripeAmount(value: unknown): bigint | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}
