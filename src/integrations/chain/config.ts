import { z } from "zod";

/**
 * NETWORKS_FILE: the networks Coffer pays out on itself (EVM networks and Solana). Networks not in
 * the file keep the external-processor behaviour (process/complete/fail routes).
 *
 * {"ethereum": {"kind": "evm", "chainId": 1, "rpcUrls": ["https://a", "https://b"],
 *   "assets": {"ETH": {"native": true, "limits": {"perPayoutMaxMinor": "1000000000000000000"}},
 *              "USDC": {"contract": "0xA0b8…", "limits": {"perWalletPerDayMinor": "10000000000"}}},
 *   "feeModel": "eip1559", "confirmations": 12,
 *   "fees": {"replaceAfterBlocks": 3, "maxFeePerGasCapWei": "500000000000"}},
 *  "solana": {"kind": "solana", "rpcUrls": ["https://…"], "assets": {"SOL": {"native": true}}}}
 *
 * Amounts are in the asset's smallest unit (wei, USDC's 6-decimal unit, lamports), as strings.
 */
const minor = z.union([z.string().regex(/^\d{1,78}$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));

/** Limits per asset on one network; each is checked when the withdrawal is requested (422 LIMIT_EXCEEDED one unit over). */
export const AssetLimits = z.strictObject({
  perPayoutMinMinor: minor.optional(),
  perPayoutMaxMinor: minor.optional(),
  /** Sum of one wallet's withdrawals of this asset on this network per UTC day. */
  perWalletPerDayMinor: minor.optional(),
  /** Sum of all wallets' withdrawals of this asset on this network per UTC day. */
  perNetworkPerDayMinor: minor.optional(),
});
export type AssetLimits = z.infer<typeof AssetLimits>;

const evmAddress = z.string().regex(/^0x[0-9a-fA-F]{40}$/);

/** `withdrawalFeeMinor`: a flat fee per withdrawal, kept from what is sent (the recipient gets the amount less the fee). */
const NativeAsset = z.strictObject({ native: z.literal(true), limits: AssetLimits.optional(), withdrawalFeeMinor: minor.optional() });
const Erc20Asset = z.strictObject({ contract: evmAddress, limits: AssetLimits.optional(), withdrawalFeeMinor: minor.optional() });

export const EvmNetwork = z.strictObject({
  kind: z.literal("evm"),
  chainId: z.number().int().positive(),
  rpcUrls: z.array(z.url()).min(1).max(8),
  assets: z.strictObject({ ETH: NativeAsset.optional(), USDC: Erc20Asset.optional() }),
  feeModel: z.enum(["eip1559", "legacy"]),
  /** Blocks deep a receipt must be before the payout is final (1 = mined). */
  confirmations: z.number().int().min(1).max(1000),
  fees: z
    .strictObject({
      /** A payout not mined this many blocks after it was broadcast is replaced with higher fees. */
      replaceAfterBlocks: z.number().int().min(1).max(10_000).default(3),
      /** The most any payout may offer per gas (maxFeePerGas or gasPrice); past it, it parks for an operator. */
      maxFeePerGasCapWei: minor.default(500_000_000_000n),
      /** Gas one payout may take at most (an estimate over it parks the payout). */
      gasLimitCap: z.number().int().min(21_000).max(1_000_000).default(120_000),
    })
    .prefault({}),
  runway: z
    .strictObject({
      /** Kept free in the hot wallet for fees on top of the payouts pending (wei). */
      feeMarginWei: minor.default(10_000_000_000_000_000n),
    })
    .prefault({}),
  /** A payout broadcast longer ago than this and not final raises an alert. */
  pendingAlertMinutes: z.number().int().min(1).max(10_080).default(30),
});
export type EvmNetwork = z.infer<typeof EvmNetwork>;

export const SolanaNetwork = z.strictObject({
  kind: z.literal("solana"),
  rpcUrls: z.array(z.url()).min(1).max(8),
  // SOL only for now: SPL tokens (USDC on Solana) are not paid by the pipeline yet, so the file may not name
  // them (a withdrawal the file names is refused to processors, and nothing would pay it).
  assets: z.strictObject({ SOL: NativeAsset.optional() }),
  runway: z.strictObject({ feeMarginLamports: minor.default(10_000_000n) }).prefault({}),
  pendingAlertMinutes: z.number().int().min(1).max(10_080).default(30),
});
export type SolanaNetwork = z.infer<typeof SolanaNetwork>;

export const ChainNetwork = z.discriminatedUnion("kind", [EvmNetwork, SolanaNetwork]);
export type ChainNetwork = z.infer<typeof ChainNetwork>;

export const NetworksFile = z.record(z.string().regex(/^[a-z0-9_-]{1,40}$/), ChainNetwork);
export type Networks = z.infer<typeof NetworksFile>;

export function parseNetworks(json: unknown): Networks {
  return NetworksFile.parse(json);
}

export async function loadNetworks(path: string | undefined): Promise<Networks> {
  if (!path) return {};
  return parseNetworks(await Bun.file(path).json());
}

/** The EVM networks of the file. */
export function evmNetworks(networks: Networks): Record<string, EvmNetwork> {
  return Object.fromEntries(Object.entries(networks).filter((e): e is [string, EvmNetwork] => e[1].kind === "evm"));
}

/** The Solana networks of the file. */
export function solanaNetworks(networks: Networks): Record<string, SolanaNetwork> {
  return Object.fromEntries(Object.entries(networks).filter((e): e is [string, SolanaNetwork] => e[1].kind === "solana"));
}

type AssetConfig = { limits?: AssetLimits; withdrawalFeeMinor?: bigint };

function assetConfig(networks: Record<string, { assets: object }>, network: string, asset: string): AssetConfig | undefined {
  return (networks[network]?.assets as Record<string, AssetConfig | undefined> | undefined)?.[asset];
}

/** The limits configured for `asset` on `network`, if Coffer pays that network itself. */
export function assetLimits(networks: Networks, network: string, asset: string): AssetLimits | undefined {
  return assetConfig(networks, network, asset)?.limits;
}

/** The flat withdrawal fee of `asset` on `network` (0 when none is configured). */
export function withdrawalFee(networks: Record<string, { assets: object }>, network: string, asset: string): bigint {
  return assetConfig(networks, network, asset)?.withdrawalFeeMinor ?? 0n;
}
