import { Address } from "@ton/core";
import { broke, OK, type AddressCheck } from "./rules";

/**
 * TON addresses, in both forms wallets show:
 * - raw: the workchain (`0` basechain or `-1` masterchain), `:`, the 32-byte account id in hex;
 * - user-friendly: 48 characters of base64 or base64url holding a tag byte (bounceable 0x11 or
 *   non-bounceable 0x51, either with the testnet flag 0x80), the workchain byte, the account id
 *   and a CRC16 of those 34 bytes. @ton/core checks the CRC and the tag; the workchain is ours to
 *   limit to 0 and -1 (other workchains exist on paper only).
 */
const RAW = /^(-?\d+):([0-9a-fA-F]*)$/;
const FRIENDLY_CHARACTERS = /^[A-Za-z0-9+/_-]+$/;
const WORKCHAINS = new Set([0, -1]);

export function checkTon(address: string): AddressCheck {
  const raw = RAW.exec(address);
  if (raw) {
    if (!/^(?:0|-1)$/.test(raw[1]!)) return broke("workchain");
    return raw[2]!.length === 64 ? OK : broke("length");
  }
  if (!FRIENDLY_CHARACTERS.test(address)) return broke(address.includes(":") ? "format" : "characters");
  if (address.length !== 48) return broke("length");
  // 48 such characters are always 36 bytes; @ton/core then throws on a bad CRC or an unknown tag.
  let parsed: ReturnType<typeof Address.parseFriendly>;
  try {
    parsed = Address.parseFriendly(address);
  } catch (error) {
    return broke(String(error instanceof Error ? error.message : error).includes("checksum") ? "checksum" : "tag");
  }
  return WORKCHAINS.has(parsed.address.workChain) ? OK : broke("workchain");
}
