import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { publishOnce } from "../../lib/files";

/**
 * Sensitive fields at rest (payout destinations: bank accounts, addresses) are sealed with
 * AES-256-GCM under a key named by id, so keys rotate: new data uses the active key, old data keeps
 * naming the key that sealed it. The row's id is bound in as associated data, so a sealed value
 * copied onto another row does not open.
 *
 * File (ENCRYPTION_KEYS_FILE): {"active": "e1", "keys": {"e1": "<base64 32 bytes>"}, "fingerprintKey": "<base64>"}
 * `fingerprintKey` keys the HMAC of idempotency fingerprints, so a stored fingerprint cannot be
 * brute-forced back into the account number it covers.
 */
export interface Sealed {
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

interface KeyFile {
  active: string;
  keys: Record<string, string>;
  fingerprintKey: string;
}

export class Vault {
  private constructor(
    private readonly active: string,
    private readonly keys: Map<string, Buffer>,
    readonly fingerprintKey: Buffer,
  ) {}

  static async load(path: string): Promise<Vault> {
    const file = (await Bun.file(path).json()) as KeyFile;
    const keys = new Map(Object.entries(file.keys).map(([kid, b64]) => [kid, Buffer.from(b64, "base64")]));
    for (const [kid, key] of keys) if (key.length !== 32) throw new Error(`encryption key ${kid} is not 32 bytes`);
    if (!keys.has(file.active)) throw new Error(`the active encryption key ${file.active} is missing`);
    const fingerprintKey = Buffer.from(file.fingerprintKey ?? "", "base64");
    if (fingerprintKey.length < 32) throw new Error("fingerprintKey must be at least 32 bytes");
    return new Vault(file.active, keys, fingerprintKey);
  }

  seal(value: unknown, rowId: string): Sealed {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.keys.get(this.active)!, iv);
    cipher.setAAD(Buffer.from(rowId));
    const ct = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
    return { kid: this.active, iv: iv.toString("base64"), ct: ct.toString("base64"), tag: cipher.getAuthTag().toString("base64") };
  }

  open<T>(sealed: Sealed, rowId: string): T {
    const key = this.keys.get(sealed.kid);
    if (!key) throw new Error(`no encryption key ${sealed.kid}`);
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(sealed.iv, "base64"));
    decipher.setAAD(Buffer.from(rowId));
    decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(sealed.ct, "base64")), decipher.final()]).toString("utf8")) as T;
  }

  /** HMAC-SHA-256 under the fingerprint key (base64url). */
  mac(text: string): string {
    return createHmac("sha256", this.fingerprintKey).update(text).digest("base64url");
  }
}

/** Make a key file if there is none (see publishOnce: processes starting together share one). */
export async function ensureVaultFile(path: string): Promise<boolean> {
  if (existsSync(path)) return false;
  const file: KeyFile = { active: "e1", keys: { e1: randomBytes(32).toString("base64") }, fingerprintKey: randomBytes(32).toString("base64") };
  return publishOnce(path, JSON.stringify(file, null, 2));
}
