import { sha256 } from "@noble/hashes/sha2.js";
import { bech32, bech32m, createBase58check } from "@scure/base";
import { broke, isMixedCase, OK, type AddressCheck } from "./rules";

/**
 * Bitcoin on-chain addresses: base58check P2PKH/P2SH with the network's version bytes (checksum:
 * @scure/base over @noble/hashes' SHA-256), and native segwit in Bech32 (version 0) or Bech32m
 * (versions 1 to 16), exactly as BIP-173 and BIP-350 decode them.
 */
export type BitcoinNetwork = "bitcoin" | "bitcoin-testnet";

interface Params {
  hrp: string;
  p2pkh: number;
  p2sh: number;
}

const PARAMS: Record<BitcoinNetwork, Params> = {
  bitcoin: { hrp: "bc", p2pkh: 0x00, p2sh: 0x05 },
  // Testnet's, which signet shares.
  "bitcoin-testnet": { hrp: "tb", p2pkh: 0x6f, p2sh: 0xc4 },
};

/** Other networks' version bytes: finding one of these means "another network", not "garbage". */
const OTHER_VERSIONS = new Set([0x00, 0x05, 0x6f, 0xc4]);

const base58check = createBase58check(sha256);
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;
/** A Bitcoin-family segwit prefix (mainnet, testnet and signet, regtest), in either case. */
const SEGWIT_PREFIX = /^(?:bc|tb|bcrt)1/i;
/** Letters, the separator, then letters and digits: what a Bech32 string of any prefix looks like. */
const BECH32_LOOK = /^[a-z]{1,83}1[a-z0-9]+$/i;
/** Bech32's human-readable part, the separator (the last `1`), then data characters only; on the lower-cased string. */
const BECH32_SHAPE = /^([a-z0-9]{1,83})1([qpzry9x8gf2tvdw0s3jn54khce6mua7l]*)$/;

export function checkBitcoin(network: BitcoinNetwork, address: string): AddressCheck {
  const params = PARAMS[network];
  // A base58 address of ours never starts with a segwit prefix (its first character is 1, 3, m, n
  // or 2). Another prefix (`tc1…`) is taken as Bech32 when the string cannot be base58.
  if (SEGWIT_PREFIX.test(address) || (!BASE58.test(address) && BECH32_LOOK.test(address))) return checkSegwit(params, address);
  if (!BASE58.test(address)) return broke("characters");
  return checkBase58(params, address);
}

/** Segwit: BIP-350's decoder, rule by rule. */
function checkSegwit(params: Params, address: string): AddressCheck {
  if (isMixedCase(address)) return broke("mixed-case");
  const lower = address.toLowerCase() as `${string}1${string}`;
  const shape = BECH32_SHAPE.exec(lower);
  if (!shape) return broke("characters");
  if (shape[1] !== params.hrp) return broke("network");
  // Both checksums are tried; no string is valid in both (BIP-350). 90 characters at most (BIP-173).
  if (lower.length > 90) return broke("length");
  const asBech32m = bech32m.decodeUnsafe(lower, 90);
  const asBech32 = asBech32m ? undefined : bech32.decodeUnsafe(lower, 90);
  const decoded = asBech32m ?? asBech32;
  if (!decoded) return broke("checksum");
  const [version, ...rest] = decoded.words;
  if (version === undefined) return broke("format");
  if (version > 16) return broke("witness-version");
  const program = bech32.fromWordsUnsafe(rest);
  if (!program) return broke("padding");
  if (program.length < 2 || program.length > 40) return broke("program-length");
  if (version === 0 && program.length !== 20 && program.length !== 32) return broke("program-length");
  if ((version === 0) !== Boolean(asBech32)) return broke("checksum-variant");
  return OK;
}

/** Base58check: 21 bytes (a version byte and a 20-byte hash) under a 4-byte double-SHA-256 checksum. */
function checkBase58(params: Params, address: string): AddressCheck {
  let payload: Uint8Array;
  try {
    payload = base58check.decode(address);
  } catch {
    return broke("checksum");
  }
  if (payload.length !== 21) return broke("length");
  const version = payload[0]!;
  if (version === params.p2pkh || version === params.p2sh) return OK;
  return broke(OTHER_VERSIONS.has(version) ? "network" : "version");
}

/** The witness version and program of a segwit address this module accepts (for tests against BIP scriptPubKeys). */
export function segwitProgram(address: string): { version: number; program: Uint8Array } | undefined {
  const lower = address.toLowerCase();
  const decoded = bech32m.decodeUnsafe(lower, 90) ?? bech32.decodeUnsafe(lower, 90);
  if (!decoded || decoded.words.length === 0) return undefined;
  const program = bech32.fromWordsUnsafe(decoded.words.slice(1));
  return program ? { version: decoded.words[0]!, program } : undefined;
}
