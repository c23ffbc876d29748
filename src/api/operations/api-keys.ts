import { z } from "zod";
import { scopeOf, type Permission } from "../../../lib/principal";
import { apiKeyView } from "../../security/api-keys";
import { exactlyOnce } from "../exactly-once";
import { ok, operation } from "../operation";
import { claimOf } from "../wallet-service";
import { ApiKeyList, ApiKeyView, ApiKeyWithSecret } from "../outputs";
import { CreateApiKey, RotateApiKey, Uuid } from "../schemas";

/**
 * API keys for services, managed by admins. The full key is in the answer to create and rotate;
 * every other answer shows only its public prefix. A create or rotate retried with the same
 * Idempotency-Key answers the first answer again (stored sealed, see exactly-once.ts) and makes no
 * second key.
 */
const keyId = Uuid.describe("the API key's id");
const KEY = "0193a2b4-a0b1-7c2d-8e3f-4a5b6c7d8e9f";

export const apiKeyOperations = [
  operation({
    name: "api-keys.create",
    method: "POST",
    path: "/v1/api-keys",
    summary: "Issue an API key for a service (admins); the secret is shown once",
    input: CreateApiKey,
    output: ApiKeyWithSecret,
    status: 201,
    action: "apikeys.manage",
    tier: "standard",
    idempotent: true,
    example: { name: "payroll", subject: "payroll-service", permissions: ["payments:write", "wallets:read"], rateLimitPerMinute: 600 },
    run: ({ caller, key, deps }, input) =>
      exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, "api-keys.create", "", input), async (sql) => {
        const created = await deps.apiKeys.create({ ...input, permissions: input.permissions as Permission[] }, scopeOf(caller.principal), sql);
        return { status: 201, body: { ...apiKeyView(created.row), key: created.key } };
      }),
  }),
  operation({
    name: "api-keys.list",
    method: "GET",
    path: "/v1/api-keys",
    summary: "Every API key (never a secret)",
    input: z.strictObject({}),
    output: ApiKeyList,
    status: 200,
    action: "apikeys.read",
    tier: "standard",
    idempotent: false,
    example: {},
    run: async ({ deps }) => ok({ items: (await deps.apiKeys.list()).map(apiKeyView) }),
  }),
  operation({
    name: "api-keys.get",
    method: "GET",
    path: "/v1/api-keys/:keyId",
    summary: "One API key (never its secret)",
    input: z.strictObject({ keyId }),
    output: ApiKeyView,
    status: 200,
    action: "apikeys.read",
    tier: "standard",
    idempotent: false,
    example: { keyId: KEY },
    run: async ({ deps }, input) => ok(apiKeyView(await deps.apiKeys.get(input.keyId))),
  }),
  operation({
    name: "api-keys.revoke",
    method: "POST",
    path: "/v1/api-keys/:keyId/revoke",
    summary: "Revoke an API key: it is refused from now on",
    input: z.strictObject({ keyId }),
    output: ApiKeyView,
    status: 200,
    action: "apikeys.manage",
    tier: "standard",
    idempotent: true,
    example: { keyId: KEY },
    run: async ({ deps }, input) => ok(apiKeyView(await deps.apiKeys.revoke(input.keyId))),
  }),
  operation({
    name: "api-keys.rotate",
    method: "POST",
    path: "/v1/api-keys/:keyId/rotate",
    summary: "Issue a new secret for a key; the old one works for overlapSeconds more",
    input: z.strictObject({ keyId, ...RotateApiKey.unwrap().shape }),
    output: ApiKeyWithSecret,
    status: 201,
    action: "apikeys.manage",
    tier: "standard",
    idempotent: true,
    example: { keyId: KEY, overlapSeconds: 3600 },
    run: ({ caller, key, deps }, input) =>
      exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, "api-keys.rotate", input.keyId, input), async (sql) => {
        const rotated = await deps.apiKeys.rotate(input.keyId, input.overlapSeconds, scopeOf(caller.principal), sql);
        return { status: 201, body: { ...apiKeyView(rotated.row), key: rotated.key } };
      }),
  }),
];
