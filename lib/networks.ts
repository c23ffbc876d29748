import type { Asset } from "./assets";

/**
 * Which chain carries which asset, and which assets leave by bank: a payout is refused unless its
 * asset travels where it is sent: BTC on Bitcoin and Lightning, ETH and USDC on the EVM chains, SOL
 * and USDC on Solana, NEAR on NEAR, TON on TON; fiat to bank accounts only. Each network's address
 * rules are in lib/addresses/.
 */
export const NETWORK_ASSETS = {
  bitcoin: ["BTC"],
  "bitcoin-testnet": ["BTC"],
  lightning: ["BTC"],
  ethereum: ["ETH", "USDC"],
  polygon: ["ETH", "USDC"],
  base: ["ETH", "USDC"],
  arbitrum: ["ETH", "USDC"],
  optimism: ["ETH", "USDC"],
  bsc: ["ETH", "USDC"],
  avalanche: ["ETH", "USDC"],
  linea: ["ETH", "USDC"],
  solana: ["SOL", "USDC"],
  near: ["NEAR"],
  ton: ["TON"],
} as const satisfies Record<string, readonly Asset[]>;

export type Network = keyof typeof NETWORK_ASSETS;
export const NETWORKS = Object.keys(NETWORK_ASSETS) as [Network, ...Network[]];

/** Assets that are money in a bank, not on a chain: they pay out to bank accounts only. */
export const FIAT_ASSETS: readonly Asset[] = ["USD", "EUR", "KES"];

export function isFiat(asset: Asset): boolean {
  return FIAT_ASSETS.includes(asset);
}

/**
 * Why `asset` cannot be paid out to a destination of this kind (on this network), as the field to
 * blame and a sentence; undefined when it can.
 */
export function payoutMismatch(asset: Asset, destination: { type: string; network?: string }): { field: string; reason: string } | undefined {
  if (destination.type !== "crypto") {
    return isFiat(asset) ? undefined : { field: "destination.type", reason: `${asset} pays out on a blockchain, to a crypto destination` };
  }
  if (isFiat(asset)) return { field: "destination.type", reason: `${asset} pays out to bank accounts only` };
  const carried: readonly string[] | undefined = (NETWORK_ASSETS as Record<string, readonly string[]>)[destination.network ?? ""];
  if (!carried) return { field: "destination.network", reason: "unknown network" };
  if (!carried.includes(asset)) return { field: "destination.network", reason: `${destination.network} does not carry ${asset} (it carries ${carried.join(", ")})` };
  return undefined;
}
