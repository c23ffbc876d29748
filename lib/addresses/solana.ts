import { base58 } from "@scure/base";
import { broke, OK, type AddressCheck } from "./rules";

/** Solana addresses: base58 (@scure/base, Bitcoin's alphabet) of exactly 32 bytes, a public key or a program-derived address. */
const ALPHABET = /^[1-9A-HJ-NP-Za-km-z]+$/;

export function checkSolana(address: string): AddressCheck {
  if (!ALPHABET.test(address)) return broke("characters");
  // 32 bytes are 32 to 44 characters; anything much longer is refused before decoding it.
  if (address.length > 44) return broke("length");
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(address);
  } catch {
    return broke("characters");
  }
  return bytes.length === 32 ? OK : broke("length");
}
