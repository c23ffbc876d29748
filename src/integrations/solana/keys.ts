import { Keypair } from "@solana/web3.js";
import { base58 } from "@scure/base";

/**
 * A Solana hot-wallet secret key as operators hold one: base58 of the 64-byte secret key (what
 * wallets export), or the JSON array of 64 numbers `solana-keygen` writes. The error never quotes
 * what it was given.
 */
export function parseSolanaSecretKey(text: string): Keypair {
  const refused = new Error("not a valid Solana secret key (expected base58 of the 64-byte secret key, or a JSON array of 64 numbers)");
  const trimmed = text.trim();
  let bytes: Uint8Array;
  try {
    if (trimmed.startsWith("[")) {
      const numbers: unknown = JSON.parse(trimmed);
      if (!Array.isArray(numbers) || !numbers.every((n) => Number.isInteger(n) && n >= 0 && n <= 255)) throw refused;
      bytes = Uint8Array.from(numbers as number[]);
    } else {
      bytes = base58.decode(trimmed);
    }
  } catch {
    throw refused;
  }
  if (bytes.length !== 64) throw refused;
  try {
    // Checks that the last 32 bytes are the public key of the first 32.
    return Keypair.fromSecretKey(bytes);
  } catch {
    throw refused;
  }
}

/** The secret key as stored (sealed): base58 of the 64 bytes. */
export function encodeSolanaSecretKey(keypair: Keypair): string {
  return base58.encode(keypair.secretKey);
}

export function decodeSolanaSecretKey(stored: string): Keypair {
  return Keypair.fromSecretKey(base58.decode(stored));
}
