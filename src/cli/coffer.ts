import { parseArgs } from "node:util";
import { loadConfig } from "../config";
import { loadKeyRing } from "../security/keys";
import { ROLES, PERMISSIONS, type Permission, type Role } from "../../lib/principal";
import { mintToken } from "../security/tokens";
import { runReconcile } from "./reconcile";
import { runHotWallet } from "./hot-wallet";

/**
 * `bun run coffer <command>`: operator tools.
 *   token --sub ID --role user|service|admin|auditor [--ttl SECONDS] [--perm PERMISSION ...]
 *     prints an access token signed with the active key of JWT_KEYS_FILE (<COFFER_HOME>/jwt-keys.json).
 *   reconcile [--since DATE]
 *     compares what Stripe reports with the ledger (src/cli/reconcile.ts); exit 1 on a difference.
 *   hot-wallet import --network NAME   (private key on stdin) | hot-wallet show
 *     stores a network's hot-wallet key sealed (src/cli/hot-wallet.ts); shows addresses and balances.
 */
const USAGE = `usage: bun run coffer token --sub ID --role user|service|admin|auditor [--ttl SECONDS] [--perm PERMISSION ...]
       bun run coffer reconcile [--since DATE]
       bun run coffer hot-wallet import --network NAME   (private key on stdin)
       bun run coffer hot-wallet show`;
const MAX_TTL_S = 30 * 24 * 3600;

const [command, ...rest] = process.argv.slice(2);
if (command === "reconcile") process.exit(await runReconcile(rest));
if (command === "hot-wallet") process.exit(await runHotWallet(rest));
if (command !== "token") fail(USAGE);
const { values } = (() => {
  try {
    return parseArgs({
      args: rest,
      options: { sub: { type: "string" }, role: { type: "string" }, ttl: { type: "string", default: "3600" }, perm: { type: "string", multiple: true } },
      strict: true,
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n${USAGE}`);
  }
})();
if (!values.sub || !/^[A-Za-z0-9._:@-]{1,128}$/.test(values.sub)) fail(`--sub is required (letters, digits, . _ : @ -)\n${USAGE}`);
if (!values.role || !(ROLES as readonly string[]).includes(values.role)) fail(`--role must be one of ${ROLES.join(", ")}\n${USAGE}`);
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_S) fail(`--ttl must be 1..${MAX_TTL_S} seconds\n${USAGE}`);
const perms = values.perm ?? [];
for (const p of perms) if (!(PERMISSIONS as readonly string[]).includes(p)) fail(`unknown permission ${p}; known: ${PERMISSIONS.join(", ")}\n${USAGE}`);

const config = loadConfig();
const ring = await loadKeyRing(config.keysFile).catch(() => fail(`no usable key file at ${config.keysFile}: start the service once, or set JWT_KEYS_FILE`));
console.log(
  await mintToken(ring, { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE }, {
    sub: values.sub!,
    role: values.role as Role,
    ttlSeconds: ttl,
    permissions: perms as Permission[],
  }),
);

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
