import { join } from "node:path";
import type { Caller } from "../../src/api/wallet-service";
import { generateKeyFile, loadKeyRing, type KeyRing } from "../../src/security/keys";
import { scopeOf, type Permission, type Principal, type Role } from "../../lib/principal";
import { mintToken } from "../../src/security/tokens";
import { testDir } from "./temp";

/**
 * One access-token key file for the whole test process (nodes and subprocesses read it through
 * JWT_KEYS_FILE), and tokens minted with it exactly as `bun run coffer token` does.
 */
export const TOKEN_SETTINGS = { issuer: "coffer", audience: "coffer-api" };

let keys: Promise<{ file: string; ring: KeyRing }> | undefined;

export function testKeys(): Promise<{ file: string; ring: KeyRing }> {
  keys ??= (async () => {
    const file = join(testDir("keys"), "jwt-keys.json");
    await generateKeyFile(file, "test-key");
    return { file, ring: await loadKeyRing(file) };
  })();
  return keys;
}

export interface As {
  sub: string;
  role: Role;
  perms?: Permission[];
}

export const ADMIN: As = { sub: "test-admin", role: "admin" };

/** A plain user acting as themself (`sub`): a chama member, an app's end user. */
export const user = (sub: string): As => ({ sub, role: "user" });

/** Unique people per test (`people("a1", "m1")` → `{ a1: "a1-<run>", m1: "m1-<run>" }`), so no test sees another's data through a shared name. */
export function people<const N extends readonly string[]>(...names: N): { [K in N[number]]: string } {
  const run = crypto.randomUUID().slice(0, 8);
  return Object.fromEntries(names.map((n) => [n, `${n}-${run}`])) as { [K in N[number]]: string };
}

const minted = new Map<string, string>();

/** A valid token for `who` (cached per identity; they last an hour). */
export async function tokenFor(who: As = ADMIN): Promise<string> {
  const id = `${who.role}|${who.sub}|${(who.perms ?? []).join(",")}`;
  const cached = minted.get(id);
  if (cached) return cached;
  const token = await mintToken((await testKeys()).ring, TOKEN_SETTINGS, { sub: who.sub, role: who.role, ttlSeconds: 3600, permissions: who.perms ?? [] });
  minted.set(id, token);
  return token;
}

/** The in-process equivalent of a request made with `who`'s token. */
export function callerFor(who: As = ADMIN): Caller {
  const principal: Principal = { sub: who.sub, role: who.role, permissions: new Set(who.perms ?? []) };
  return { scope: scopeOf(principal), principal };
}
