import type { Hono } from "hono";
import { CreateApiKey, RotateApiKey, Uuid } from "../api/schemas";
import { apiKeyView } from "../security/api-keys";
import { authorize } from "../../lib/policy";
import type { Permission } from "../../lib/principal";
import { principalOf } from "./auth";
import type { HttpDeps } from "./deps";
import { body, idempotencyKey, parse } from "./respond";

/**
 * API keys for services, managed by admins. The full key is in the answer to create and rotate,
 * once; every other answer shows only its public prefix. (Idempotency-Key is required here as on
 * every POST, but a retried create makes a second key rather than replaying a secret.)
 */
export function registerApiKeys(app: Hono, { apiKeys }: HttpDeps): void {
  app.post("/v1/api-keys", async (c) => {
    const p = principalOf(c);
    authorize(p, "apikeys.manage");
    idempotencyKey(c);
    const input = await body(c, CreateApiKey);
    const { key, row } = await apiKeys.create({ ...input, permissions: input.permissions as Permission[] }, `${p.role}:${p.sub}`);
    return c.json({ ...apiKeyView(row), key }, 201);
  });

  app.get("/v1/api-keys", async (c) => {
    authorize(principalOf(c), "apikeys.read");
    return c.json({ items: (await apiKeys.list()).map(apiKeyView) });
  });

  app.get("/v1/api-keys/:id", async (c) => {
    authorize(principalOf(c), "apikeys.read");
    return c.json(apiKeyView(await apiKeys.get(parse(Uuid, c.req.param("id"), "path.id"))));
  });

  app.post("/v1/api-keys/:id/revoke", async (c) => {
    authorize(principalOf(c), "apikeys.manage");
    idempotencyKey(c);
    return c.json(apiKeyView(await apiKeys.revoke(parse(Uuid, c.req.param("id"), "path.id"))));
  });

  app.post("/v1/api-keys/:id/rotate", async (c) => {
    const p = principalOf(c);
    authorize(p, "apikeys.manage");
    idempotencyKey(c);
    const id = parse(Uuid, c.req.param("id"), "path.id");
    const input = await body(c, RotateApiKey, { optional: true });
    const { key, row } = await apiKeys.rotate(id, input?.overlapSeconds ?? 0, `${p.role}:${p.sub}`);
    return c.json({ ...apiKeyView(row), key }, 201);
  });
}
