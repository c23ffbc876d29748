import type { Hono } from "hono";
import { getTransfer } from "../api/queries";
import { CreateTransfer, Uuid } from "../api/schemas";
import { callerOf, principalOf } from "./auth";
import type { HttpDeps } from "./deps";
import { body, idempotencyKey, parse, send } from "./respond";

export function registerTransfers(app: Hono, { db, ops }: HttpDeps): void {
  app.post("/v1/transfers", async (c) => {
    const key = idempotencyKey(c);
    return send(c, await ops.createTransfer(callerOf(c), key, await body(c, CreateTransfer)));
  });

  app.get("/v1/transfers/:id", async (c) => c.json(await getTransfer(db, principalOf(c), parse(Uuid, c.req.param("id"), "path.id"))));
}
