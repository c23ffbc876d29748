import type { Hono } from "hono";
import { Uuid } from "../api/schemas";
import { verifyLedger } from "../ledger/verify";
import { authorize } from "../../lib/policy";
import { principalOf } from "./auth";
import type { HttpDeps } from "./deps";
import { parse } from "./respond";

export function registerAdmin(app: Hono, { db, host, cluster }: HttpDeps): void {
  /** Nodes, their shards and lease ages, actors loaded and mailbox depths. */
  app.get("/admin/cluster", async (c) => {
    authorize(principalOf(c), "admin.read");
    if (!cluster) return c.json({ mode: "single", nodes: [{ nodeId: "local", actorsLoaded: host.size, mailboxDepth: host.mailboxDepth }] });
    return c.json({ mode: "cluster", ...(await cluster.clusterStatus()) });
  });

  app.get("/admin/verify", async (c) => {
    authorize(principalOf(c), "admin.read");
    return c.json(await verifyLedger(db));
  });

  /** The live actor, not the stored row: what it holds in memory and how much is waiting for it. */
  app.get("/admin/wallets/:id/state", async (c) => {
    authorize(principalOf(c), "admin.read");
    const id = parse(Uuid, c.req.param("id"), "path.id");
    const live = host.inspect(id);
    return c.json(JSON.parse(JSON.stringify({ walletId: id, ...live }, (_k, v) => (typeof v === "bigint" ? v.toString() : v))));
  });
}
