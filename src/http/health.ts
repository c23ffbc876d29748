import type { Hono } from "hono";
import type { HttpDeps } from "./deps";

/** Liveness and readiness: 200 when the database answers, 503 when it does not. No credentials needed. */
export function registerHealth(app: Hono, { db, host }: HttpDeps): void {
  app.get("/health", async (c) => {
    try {
      await db`select 1`;
      return c.json({ status: "ok", actorsLoaded: host.size });
    } catch {
      return c.json({ status: "degraded", database: "unreachable" }, 503);
    }
  });
}
