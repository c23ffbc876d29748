import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bech32, hex, utf8 } from "@scure/base";
import { decode } from "light-bolt11-decoder";
import { broke, isMixedCase, OK, type AddressCheck } from "./rules";

/**
 * Lightning: a BOLT-11 invoice. Its Bech32 checksum is checked by @scure/base (without Bech32's
 * 90-character limit, which invoices exceed), its prefix, amount and fields are read by
 * light-bolt11-decoder, and its signature must recover a public key with @noble/curves (the
 * payee's, when the invoice names one). Then it must be for this deployment's network, for
 * exactly the withdrawal's amount when it names one, and not expired at `now`.
 */
export type LightningNetwork = "bitcoin" | "testnet" | "regtest";
export const LIGHTNING_NETWORKS = ["bitcoin", "testnet", "regtest"] as const satisfies readonly LightningNetwork[];

/** BOLT-11's currency prefixes, after `ln`. */
const CURRENCY: Record<LightningNetwork, string> = { bitcoin: "bc", testnet: "tb", regtest: "bcrt" };

/** BOLT-11: without an `x` field an invoice expires 3600 seconds after its timestamp. */
const DEFAULT_EXPIRY_S = 3600;
/** BOLT-11: the timestamp is the data's first 7 words, the signature (65 bytes) its last 104. */
const TIMESTAMP_WORDS = 7;
const SIGNATURE_WORDS = 104;
const DATA_CHARACTERS = /^[a-z0-9]+1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]+$/;

export interface InvoiceTerms {
  network: LightningNetwork;
  /** The withdrawal's amount in millisatoshis. */
  amountMsat: bigint;
  now: Date;
}

type Decoded = ReturnType<typeof decode>;

export function checkLightning(invoice: string, terms: InvoiceTerms): AddressCheck {
  if (!/^ln/i.test(invoice)) return broke("format");
  if (isMixedCase(invoice)) return broke("mixed-case");
  const lower = invoice.toLowerCase();
  if (!DATA_CHARACTERS.test(lower)) return broke("characters");
  const bech = bech32.decodeUnsafe(lower, false);
  if (!bech) return broke("checksum");
  if (bech.words.length < TIMESTAMP_WORDS + SIGNATURE_WORDS) return broke("length");

  let parsed: Decoded;
  try {
    parsed = decode(lower);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/amount|multiplier/i.test(message)) return broke("amount");
    if (/prefix/i.test(message)) return broke("network");
    return broke("format");
  }
  const section = (name: string) => parsed.sections.find((s) => s.name === name) as { letters?: string; value?: unknown } | undefined;

  if (section("coin_network")?.letters !== CURRENCY[terms.network]) return broke("network");
  const amount = section("amount");
  if (amount && (amount.letters ?? "").startsWith("0")) return broke("amount");
  if (!signatureRecovers(bech.prefix, bech.words, section("payee")?.value)) return broke("signature");
  if (amount && BigInt(String(amount.value)) !== terms.amountMsat) return broke("amount-mismatch");

  const timestamp_s = Number(section("timestamp")?.value);
  const expiryField = section("expiry")?.value;
  const expiry_s = typeof expiryField === "number" ? expiryField : DEFAULT_EXPIRY_S;
  if (!Number.isSafeInteger(timestamp_s)) return broke("format");
  // Payable while now < timestamp + expiry (BOLT-11: "after the timestamp plus expiry has passed").
  if (Math.floor(terms.now.getTime() / 1000) >= timestamp_s + expiry_s) return broke("expired");
  return OK;
}

/**
 * BOLT-11's signature: over SHA-256 of the prefix (UTF-8) and the data words before the signature,
 * zero-padded to whole bytes; 64 bytes of r and s, then the recovery id. When the invoice names its
 * payee (`n`), the key recovered must be that one.
 */
function signatureRecovers(prefix: string, words: number[], payee: unknown): boolean {
  const signature = bech32.fromWordsUnsafe(words.slice(-SIGNATURE_WORDS));
  if (!signature || signature.length !== 65) return false;
  const recovery = signature[64]!;
  if (recovery > 3) return false;
  const message = concat(utf8.decode(prefix), wordsToPaddedBytes(words.slice(0, -SIGNATURE_WORDS)));
  try {
    const key = secp256k1.recoverPublicKey(concat(Uint8Array.of(recovery), signature.subarray(0, 64)), message);
    return typeof payee === "string" ? hex.encode(key) === payee.toLowerCase() : true;
  } catch {
    return false;
  }
}

/** 5-bit words to bytes, the last byte zero-padded (BOLT-11 signs the data so, unlike Bech32's own conversion, which refuses leftover bits). */
function wordsToPaddedBytes(words: number[]): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const word of words) {
    acc = ((acc << 5) | word) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  return Uint8Array.from(out);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
