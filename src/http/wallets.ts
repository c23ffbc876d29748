import type { Hono } from "hono";
import { getWallet, listTransactions } from "../api/queries";
import { CreateWallet, EmptyBody, ListQuery, MoneyIn, Uuid } from "../api/schemas";
import { callerOf, principalOf } from "./auth";
import type { HttpDeps } from "./deps";
import { body, idempotencyKey, parse, send } from "./respond";

export function registerWallets(app: Hono, { db, ops }: HttpDeps): void {
  app.post("/v1/wallets", async (c) => {
    const key = idempotencyKey(c);
    return send(c, await ops.createWallet(callerOf(c), key, await body(c, CreateWallet)));
  });

  app.get("/v1/wallets/:id", async (c) => c.json(await getWallet(db, principalOf(c), parse(Uuid, c.req.param("id"), "path.id"))));

  app.post("/v1/wallets/:id/credits", async (c) => {
    const key = idempotencyKey(c);
    const id = parse(Uuid, c.req.param("id"), "path.id");
    return send(c, await ops.credit(callerOf(c), key, id, await body(c, MoneyIn)));
  });

  app.post("/v1/wallets/:id/payments", async (c) => {
    const key = idempotencyKey(c);
    const id = parse(Uuid, c.req.param("id"), "path.id");
    return send(c, await ops.pay(callerOf(c), key, id, await body(c, MoneyIn)));
  });

  for (const action of ["freeze", "unfreeze", "close"] as const) {
    app.post(`/v1/wallets/:id/${action}`, async (c) => {
      const key = idempotencyKey(c);
      const id = parse(Uuid, c.req.param("id"), "path.id");
      await body(c, EmptyBody, { optional: true });
      return send(c, await ops.setStatus(callerOf(c), key, id, action));
    });
  }

  app.get("/v1/wallets/:id/transactions", async (c) => {
    const id = parse(Uuid, c.req.param("id"), "path.id");
    const query = parse(ListQuery, c.req.query(), "query");
    return c.json(await listTransactions(db, principalOf(c), id, query.limit, query.cursor));
  });
}
