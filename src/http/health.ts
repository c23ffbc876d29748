import type { Hono } from "hono";
import type { HttpDeps } from "./deps";

/**
 * Liveness and readiness, for anyone: 200 `{status: "ok"}` when the database answers and (in
 * cluster mode) this node's cluster membership is healthy, 503 `{status: "unavailable"}` otherwise.
 * The body says nothing else: counts, node ids, shards and reasons are for `/admin/cluster`, behind
 * a credential, not for whoever can reach the port.
 */
export function registerHealth(app: Hono, { db, cluster }: HttpDeps): void {
  app.get("/health", async (c) => {
    try {
      if (cluster && !cluster.health().ok) return c.json({ status: "unavailable" }, 503);
      await db`select 1`;
    } catch {
      return c.json({ status: "unavailable" }, 503);
    }
    return c.json({ status: "ok" });
  });
}
