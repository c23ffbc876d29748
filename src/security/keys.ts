import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import { existsSync } from "node:fs";
import { publishOnce } from "../../lib/files";

/**
 * The keys that sign and verify access tokens, by key id (`kid`), so they rotate without downtime:
 * add a new key and make it active (new tokens use it), keep the old one for verifying until its
 * tokens have expired, then mark it retired (its tokens are refused) or delete it.
 *
 * File format: {"active": "k2", "keys": [{"kid": "k2", "publicJwk": {...}, "privateJwk": {...}},
 *               {"kid": "k1", "publicJwk": {...}, "retired": true}]}
 * Only Ed25519 (EdDSA) keys: one algorithm, pinned, so no token can choose a weaker one.
 */
export const TOKEN_ALGORITHM = "EdDSA";

interface KeyFile {
  active: string;
  keys: { kid: string; publicJwk: JWK; privateJwk?: JWK; retired?: boolean }[];
}

export interface KeyRing {
  activeKid: string;
  /** Present only where this process may mint tokens (the CLI, tests, a node that generated keys). */
  signingKey?: CryptoKey;
  verifying: Map<string, { key: CryptoKey; retired: boolean }>;
}

export async function loadKeyRing(path: string): Promise<KeyRing> {
  const file = (await Bun.file(path).json()) as KeyFile;
  if (!file.active || !Array.isArray(file.keys)) throw new Error(`${path} is not a key file`);
  const verifying = new Map<string, { key: CryptoKey; retired: boolean }>();
  let signingKey: CryptoKey | undefined;
  for (const k of file.keys) {
    verifying.set(k.kid, { key: (await importJWK({ ...k.publicJwk, alg: TOKEN_ALGORITHM }, TOKEN_ALGORITHM)) as CryptoKey, retired: k.retired === true });
    if (k.kid === file.active && k.privateJwk) signingKey = (await importJWK({ ...k.privateJwk, alg: TOKEN_ALGORITHM }, TOKEN_ALGORITHM)) as CryptoKey;
  }
  const active = verifying.get(file.active);
  if (!active || active.retired) throw new Error(`the active key ${file.active} is missing or retired`);
  return { activeKid: file.active, ...(signingKey ? { signingKey } : {}), verifying };
}

/** A new key file with one active key, readable by its owner only; false if another process made one first. */
export async function generateKeyFile(path: string, kid = `k-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 8)}`): Promise<boolean> {
  const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALGORITHM, { crv: "Ed25519", extractable: true });
  const file: KeyFile = { active: kid, keys: [{ kid, publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) }] };
  return publishOnce(path, JSON.stringify(file, null, 2));
}

export async function ensureKeyFile(path: string): Promise<boolean> {
  if (existsSync(path)) return false;
  return generateKeyFile(path);
}
