import { broke, OK, type AddressCheck } from "./rules";

/**
 * NEAR account ids (nomicon, "Account ID"): 2 to 64 characters of `a-z 0-9` in parts joined by
 * single separators `-`, `_` or `.`, none at the start or end. A 64-hex implicit account (an
 * ed25519 key in lower-case hex) is one such id; upper case is refused, as NEAR refuses it.
 * No checksum exists to check: this is the whole rule.
 */
const CHARACTERS = /^[a-z0-9._-]+$/;
const ACCOUNT_ID = /^(?:[a-z\d]+[-_.])*[a-z\d]+$/;

export function checkNear(address: string): AddressCheck {
  if (address.length < 2 || address.length > 64) return broke("length");
  if (!CHARACTERS.test(address)) return broke("characters");
  return ACCOUNT_ID.test(address) ? OK : broke("separators");
}
