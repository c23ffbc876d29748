import { z } from "zod";

/**
 * NETWORKS_FILE: the EVM networks Coffer pays out on itself (first slice: native ETH only).
 * {"ethereum": {"kind": "evm", "chainId": 1, "rpcUrls": ["https://…"], "assets": {"ETH": {"native": true}},
 *   "feeModel": "eip1559", "confirmations": 12, "limits": {"perPayoutMaxMinor": "1000000000000000000"}}}
 * Networks not in the file keep today's behaviour (external processors step their withdrawals).
 */
const minor = z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));

export const EvmNetwork = z.strictObject({
  kind: z.literal("evm"),
  chainId: z.number().int().positive(),
  rpcUrls: z.array(z.url()).min(1),
  assets: z.strictObject({ ETH: z.strictObject({ native: z.literal(true) }) }),
  feeModel: z.enum(["eip1559", "legacy"]),
  confirmations: z.number().int().min(1).max(1000),
  limits: z.strictObject({ perPayoutMaxMinor: minor.optional() }).optional(),
});
export type EvmNetwork = z.infer<typeof EvmNetwork>;

export const NetworksFile = z.record(z.string().regex(/^[a-z0-9_-]{1,40}$/), EvmNetwork);
export type Networks = z.infer<typeof NetworksFile>;

export function parseNetworks(json: unknown): Networks {
  return NetworksFile.parse(json);
}

export async function loadNetworks(path: string | undefined): Promise<Networks> {
  if (!path) return {};
  return parseNetworks(await Bun.file(path).json());
}
