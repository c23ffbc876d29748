/** Assets Coffer holds, with the number of decimals of their smallest unit. */
export const ASSET_SCALE = {
  USD: 2,
  EUR: 2,
  KES: 2,
  BTC: 8,
  ETH: 18,
  USDC: 6,
  SOL: 9,
  /** NEAR's yoctoNEAR: 10^24 per NEAR, so amounts need bigint all the way (they always have). */
  NEAR: 24,
  /** TON's nanoton. */
  TON: 9,
} as const;

export type Asset = keyof typeof ASSET_SCALE;
export const ASSETS = Object.keys(ASSET_SCALE) as Asset[];

export function isAsset(value: string): value is Asset {
  return Object.hasOwn(ASSET_SCALE, value);
}
