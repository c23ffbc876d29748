import type { Asset } from "../assets";
import { NETWORK_ASSETS, type Network } from "../networks";
import { checkBitcoin } from "./bitcoin";
import { checkEvm } from "./evm";
import { checkLightning, type LightningNetwork } from "./lightning";
import { checkNear } from "./near";
import { broke, type AddressCheck } from "./rules";
import { checkSolana } from "./solana";
import { checkTon } from "./ton";

export { ADDRESS_RULES, type AddressCheck, type AddressRule } from "./rules";
export { LIGHTNING_NETWORKS, type LightningNetwork } from "./lightning";

/**
 * Is `address` somewhere `network` can pay? One entry for every network Coffer knows, pure (the
 * clock comes in as `now`), answering ok or the one rule the address broke. A payout's asset must
 * be one the network carries; `amountMinor` (in that asset's smallest unit) and `now` matter only
 * to Lightning invoices, which name an amount and expire.
 */
export interface AddressContext {
  asset: Asset;
  amountMinor: bigint;
  now: Date;
  /** The network Lightning invoices must be for (LIGHTNING_NETWORK); default bitcoin. */
  lightningNetwork?: LightningNetwork;
}

/** Satoshis to millisatoshis: BTC's smallest unit in Coffer is the satoshi (8 decimals). */
const MSAT_PER_SAT = 1000n;

export function validateAddress(network: Network, address: string, context: AddressContext): AddressCheck {
  if (!(NETWORK_ASSETS[network] as readonly Asset[]).includes(context.asset)) return broke("asset");
  switch (network) {
    case "bitcoin":
    case "bitcoin-testnet":
      return checkBitcoin(network, address);
    case "lightning":
      return checkLightning(address, { network: context.lightningNetwork ?? "bitcoin", amountMsat: context.amountMinor * MSAT_PER_SAT, now: context.now });
    case "ethereum":
    case "polygon":
    case "base":
    case "arbitrum":
    case "optimism":
    case "bsc":
    case "avalanche":
    case "linea":
      return checkEvm(address);
    case "solana":
      return checkSolana(address);
    case "near":
      return checkNear(address);
    case "ton":
      return checkTon(address);
  }
}
