import { getAddress } from "ethers/address";
import { broke, OK, type AddressCheck } from "./rules";

/**
 * EVM addresses (every EVM network alike): `0x` and 40 hex digits. All lower or all upper case
 * carries no checksum and is taken as written; mixed case is an EIP-55 checksum and must match it
 * exactly (ethers' `getAddress` computes it), so one flipped letter is refused.
 */
const SHAPE = /^0x[0-9a-fA-F]{40}$/;

export function checkEvm(address: string): AddressCheck {
  if (!SHAPE.test(address)) return broke(/^0x/.test(address) && /^0x[0-9a-fA-F]*$/.test(address) ? "length" : "format");
  const hex = address.slice(2);
  if (hex === hex.toLowerCase() || hex === hex.toUpperCase()) return OK;
  try {
    return getAddress(address) === address ? OK : broke("eip55");
  } catch {
    return broke("eip55");
  }
}
