import type { Hono } from "hono";
import type { HttpDeps } from "./deps";
import { ready } from "../admin/health";
import { migrationNames } from "../db/migrate";

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

  // Readiness: whether this node should take traffic (a load balancer's question). 200 when the
  // database answers, every migration this build knows is applied, and in a cluster the node is
  // healthy and holds every shard it should; 503 otherwise. Nothing more to anyone without a
  // credential: the reasons are in GET /admin/health and /admin/cluster.
  const migrations = migrationNames();
  app.get("/ready", async (c) => ((await ready(db, cluster, migrations)) ? c.json({ status: "ready" }) : c.json({ status: "unavailable" }, 503)));
}
