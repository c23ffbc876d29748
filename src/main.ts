import { startNode } from "./app";
import { loadConfig } from "./config";
import { startEmbeddedPostgres } from "./db/embedded";

/**
 * `bun start`: one Coffer node. Without DATABASE_URL it runs a real embedded Postgres in
 * COFFER_HOME (./.coffer) so trying it needs nothing installed.
 */
const log = (msg: string, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ level: "info", time: new Date().toISOString(), msg, ...extra }));

const config = loadConfig();
let databaseUrl = config.DATABASE_URL;
let stopEmbedded: (() => Promise<void>) | undefined;
if (!databaseUrl) {
  const embedded = await startEmbeddedPostgres(config.COFFER_HOME, log);
  databaseUrl = embedded.url;
  stopEmbedded = embedded.stop;
}

const node = await startNode(config, databaseUrl);
const server = Bun.serve({ port: config.PORT, hostname: process.env.HOST ?? "0.0.0.0", fetch: node.http.fetch, maxRequestBodySize: 1024 * 1024 });
log("coffer listening", { port: server.port, database: config.DATABASE_URL ? "DATABASE_URL" : "embedded" });

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log("shutting down", { signal });
  await server.stop();
  await node.close();
  await stopEmbedded?.();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
