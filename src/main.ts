import { startNode } from "./node";
import { loadConfig } from "./config";
import { startEmbeddedPostgres } from "./db/embedded";
import { log, reason, setLogLevel } from "../lib/log";
import { ensureKeyFile } from "./security/keys";
import { startMetricsServer } from "./monitoring/metrics";

/**
 * `bun start`: one Coffer node. Without DATABASE_URL it runs a real embedded Postgres in
 * COFFER_HOME (./.coffer) so trying it needs nothing installed.
 */
const config = loadConfig();
setLogLevel(config.LOG_LEVEL);
const info = (msg: string, fields?: Record<string, unknown>) => log("info", msg, fields);
let databaseUrl = config.DATABASE_URL;
let stopEmbedded: (() => Promise<void>) | undefined;
if (!databaseUrl) {
  const embedded = await startEmbeddedPostgres(config.COFFER_HOME, info);
  databaseUrl = embedded.url;
  stopEmbedded = embedded.stop;
}

if (await ensureKeyFile(config.keysFile)) {
  info("generated an access-token key", {
    keysFile: config.keysFile,
    mintAdminToken: "bun run coffer token --sub admin --role admin --ttl 3600",
  });
}

const node = await startNode(config, databaseUrl);
const server = Bun.serve({ port: config.PORT, hostname: process.env.HOST ?? "0.0.0.0", fetch: node.http.fetch, maxRequestBodySize: 1024 * 1024 });
info("coffer listening", { port: server.port, database: config.DATABASE_URL ? "DATABASE_URL" : "embedded" });
// Prometheus scrapes its own listener (METRICS_PORT, on loopback unless METRICS_HOST says otherwise).
const metricsServer = startMetricsServer(node.metrics, config);
info(metricsServer ? "metrics listening" : "metrics off (set METRICS_PORT to serve GET /metrics)", metricsServer ? { url: metricsServer.url } : {});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  info("shutting down", { signal });
  // A stuck connection (a NATS server that stopped answering, say) must not keep the process alive.
  setTimeout(() => {
    log("error", "shutdown took too long; exiting anyway", { timeoutMs: config.SHUTDOWN_TIMEOUT_MS });
    process.exit(1);
  }, config.SHUTDOWN_TIMEOUT_MS).unref();
  try {
    await server.stop();
    await metricsServer?.stop();
    await node.close();
    await stopEmbedded?.();
  } catch (error) {
    log("error", "shutdown failed", { error: reason(error) });
    process.exit(1);
  }
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
