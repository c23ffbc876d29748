import type { EvmNetwork } from "../chain/config";
import { RpcError, type RpcClient } from "./rpc";

/**
 * Fees of an EVM transaction: EIP-1559 (`maxFeePerGas`, `maxPriorityFeePerGas`) or legacy
 * (`gasPrice`), as the network's `feeModel` says. What the market asks now, and the bump a
 * replacement needs: nodes (geth, Anvil, reth) accept a transaction replacing another at the same
 * nonce only if EVERY fee field is at least 10% higher, or they answer "replacement transaction
 * underpriced"; +10% +1 wei in each field always clears that bar, and the market price is taken
 * when it is higher still.
 */
export type Fees = { kind: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { kind: "legacy"; gasPrice: bigint };

/** Priority fee when the node suggests none. */
const DEFAULT_TIP_WEI = 1_000_000_000n;

export async function marketFees(rpc: RpcClient, config: EvmNetwork): Promise<Fees> {
  if (config.feeModel === "legacy") return { kind: "legacy", gasPrice: BigInt(await rpc.call<string>("eth_gasPrice")) };
  const block = await rpc.call<{ baseFeePerGas?: string }>("eth_getBlockByNumber", ["latest", false]);
  const base = BigInt(block.baseFeePerGas ?? "0x0");
  let tip = DEFAULT_TIP_WEI;
  try {
    tip = BigInt(await rpc.call<string>("eth_maxPriorityFeePerGas"));
  } catch (error) {
    if (!(error instanceof RpcError)) throw error;
  }
  // Twice the base fee: room for six full blocks of base-fee rises before the offer is under water.
  return { kind: "eip1559", maxPriorityFeePerGas: tip, maxFeePerGas: base * 2n + tip };
}

/** At least 10% + 1 wei over `value`. */
const bumped = (value: bigint) => (value * 110n) / 100n + 1n;
const max = (a: bigint, b: bigint) => (a > b ? a : b);

/** The fees of a replacement for a transaction sent with `previous`: each field bumped, or the market's if higher. */
export function replacementFees(previous: Fees, market: Fees): Fees {
  if (previous.kind === "legacy") {
    return { kind: "legacy", gasPrice: max(bumped(previous.gasPrice), market.kind === "legacy" ? market.gasPrice : market.maxFeePerGas) };
  }
  const tip = max(bumped(previous.maxPriorityFeePerGas), market.kind === "eip1559" ? market.maxPriorityFeePerGas : 0n);
  const cap = max(bumped(previous.maxFeePerGas), market.kind === "eip1559" ? market.maxFeePerGas : market.gasPrice);
  return { kind: "eip1559", maxPriorityFeePerGas: tip, maxFeePerGas: cap > tip ? cap : tip };
}

/** The most per gas these fees may cost (what the cap is checked against). */
export function feeCeiling(fees: Fees): bigint {
  return fees.kind === "legacy" ? fees.gasPrice : fees.maxFeePerGas;
}

/** Fees as stored in a payout's attempts (decimal strings). */
export type StoredFees = { kind: "eip1559"; maxFeePerGas: string; maxPriorityFeePerGas: string } | { kind: "legacy"; gasPrice: string };

export function storeFees(fees: Fees): StoredFees {
  return fees.kind === "legacy"
    ? { kind: "legacy", gasPrice: fees.gasPrice.toString() }
    : { kind: "eip1559", maxFeePerGas: fees.maxFeePerGas.toString(), maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString() };
}

export function loadFees(stored: StoredFees): Fees {
  return stored.kind === "legacy"
    ? { kind: "legacy", gasPrice: BigInt(stored.gasPrice) }
    : { kind: "eip1559", maxFeePerGas: BigInt(stored.maxFeePerGas), maxPriorityFeePerGas: BigInt(stored.maxPriorityFeePerGas) };
}

/** The fee fields of an ethers transaction request for these fees. */
export function txFeeFields(fees: Fees): { type: 2; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { type: 0; gasPrice: bigint } {
  return fees.kind === "eip1559" ? { type: 2, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas } : { type: 0, gasPrice: fees.gasPrice };
}
