import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import { publishOnce } from "../../lib/files";

/**
 * The cluster key: every node holds it, nothing else does. Messages between nodes carry an
 * HMAC-SHA-256 under it, so a client that can publish on NATS (a leaked node credential, a
 * misconfigured server) still cannot make a node do anything.
 *
 * File (CLUSTER_KEYS_FILE): {"active": "c1", "keys": {"c1": "<base64, 32 bytes or more>"}}.
 * Rotate by adding a key on every node, then making it active, then removing the old one.
 */
interface KeyFile {
  active: string;
  keys: Record<string, string>;
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;

export class BusKeys {
  private constructor(
    readonly activeKid: string,
    private readonly keys: ReadonlyMap<string, Buffer>,
  ) {}

  static async load(path: string): Promise<BusKeys> {
    const file = (await Bun.file(path).json()) as KeyFile;
    if (!file || typeof file.active !== "string" || typeof file.keys !== "object") throw new Error(`${path} is not a cluster key file`);
    const keys = new Map(Object.entries(file.keys).map(([kid, b64]) => [kid, Buffer.from(String(b64), "base64")]));
    for (const [kid, key] of keys) {
      if (!KID.test(kid)) throw new Error(`cluster key id ${JSON.stringify(kid)} must be 1 to 32 letters, digits, _ or -`);
      if (key.length < 32) throw new Error(`cluster key ${kid} is shorter than 32 bytes`);
    }
    if (!keys.has(file.active)) throw new Error(`the active cluster key ${file.active} is missing`);
    return new BusKeys(file.active, keys);
  }

  /** For tests and tools: a ring made from raw keys. */
  static of(active: string, keys: Record<string, Buffer>): BusKeys {
    return new BusKeys(active, new Map(Object.entries(keys)));
  }

  has(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** base64url HMAC of `text` under the active key. */
  mac(text: string, kid = this.activeKid): string {
    return createHmac("sha256", this.keys.get(kid)!).update(text).digest("base64url");
  }

  /** True when `mac` is the HMAC of `text` under key `kid` (constant time). */
  verify(kid: string, text: string, mac: string): boolean {
    if (!this.keys.has(kid)) return false;
    const expected = Buffer.from(this.mac(text, kid));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** Make a cluster key file if there is none (processes starting together share one; see publishOnce). */
export async function ensureBusKeyFile(path: string): Promise<boolean> {
  if (existsSync(path)) return false;
  const file: KeyFile = { active: "c1", keys: { c1: randomBytes(32).toString("base64") } };
  return publishOnce(path, JSON.stringify(file, null, 2));
}
