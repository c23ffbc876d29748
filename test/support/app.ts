import { loadConfig } from "../../src/config";
import { buildHttpApp } from "../../src/http/app";
import type { HttpDeps } from "../../src/http/deps";
import { ApiKeys } from "../../src/security/api-keys";
import { Authenticator } from "../../src/security/authenticator";
import { testKeys, TOKEN_SETTINGS } from "./auth";
import type { TestNode } from "./node";

/**
 * A test node's HTTP app built again, with some of its parts swapped (a cluster that reports itself
 * unhealthy, a dead database, an API-key store that counts its checks) and configuration on top.
 */
export async function appWith(t: TestNode, parts: Partial<HttpDeps> = {}, env: Record<string, string> = {}) {
  const { file, ring } = await testKeys();
  const apiKeys = parts.apiKeys ?? new ApiKeys(t.node.db);
  return buildHttpApp({
    db: t.node.db,
    ops: t.node.ops,
    chamas: t.node.chamas,
    deposits: t.node.deposits,
    vault: t.node.vault,
    host: t.node.host,
    authenticator: new Authenticator(ring, TOKEN_SETTINGS, apiKeys),
    apiKeys,
    limiter: undefined,
    config: loadConfig({ JWT_KEYS_FILE: file, RATE_LIMITS: "off", ...env, DATABASE_URL: t.db.url }),
    corsOrigins: [],
    ...parts,
  });
}
