/**
 * The cheapest HTTP request this machine serves with Hono on Bun, for `bun run bench`: one handler
 * returning a small JSON body, in a process of its own, driven by the same load generator as the
 * payments. Its requests/s and CPU per request sit beside a payment request's, so what the HTTP
 * layer itself costs here is visible. Prints {"ready":true,"port":…,"pid":…} when ready.
 */
import { Hono } from "hono";

const app = new Hono();
app.post("/v1/ping", async (c) => {
  const body = (await c.req.json()) as { amount?: string };
  return c.json({ ok: true, amount: body.amount ?? null }, 201);
});
app.get("/v1/ping", (c) => c.json({ ok: true }));

const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
console.log(JSON.stringify({ ready: true, port: server.port, pid: process.pid }));
