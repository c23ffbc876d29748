import { nkeyAuthenticator, nkeys, usernamePasswordAuthenticator, type NodeConnectionOptions } from "@nats-io/transport-node";
import type { Config } from "../config";

/**
 * How a node connects to NATS: the servers in NATS_URL, reconnecting for ever (a NATS restart must
 * not take the node down with it), authenticated as a node (deploy/nats/coffer.conf) by user and
 * password (NATS_USER + NATS_PASSWORD or NATS_PASSWORD_FILE) or by an nkey (NATS_NKEY_SEED_FILE).
 * Without either it connects anonymously, which only an unlocked server accepts.
 *
 * Secrets stay inside authenticator closures (never a plain field of the options), and no error
 * here carries one: messages name the variable and at most the file's path.
 */
export async function natsConnectOptions(config: Config): Promise<NodeConnectionOptions> {
  if (!config.NATS_URL) throw new Error("NATS_URL is not set");
  const options: NodeConnectionOptions = {
    servers: config.NATS_URL.split(",").map((s) => s.trim()).filter(Boolean),
    name: config.NODE_ID ? `coffer-${config.NODE_ID}` : "coffer",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // No stack captured for every request (nats.js makes two Error objects per request to keep the
    // caller's stack for a later timeout): a node sends a request per forwarded batch, per lease it
    // renews (every shard, every round) and per chunk of relayed events, and none of their failures
    // needs the stack (they are retried or counted).
    noAsyncTraces: true,
  };
  if (config.NATS_NKEY_SEED_FILE) {
    const seed = await readSecretFile("NATS_NKEY_SEED_FILE", config.NATS_NKEY_SEED_FILE);
    const bytes = new TextEncoder().encode(seed);
    try {
      nkeys.fromSeed(bytes); // fail at start-up, not on every reconnect
    } catch {
      throw new Error(`NATS_NKEY_SEED_FILE: ${config.NATS_NKEY_SEED_FILE} does not hold a valid nkey seed`);
    }
    options.authenticator = nkeyAuthenticator(bytes);
  } else if (config.NATS_USER) {
    const password = config.NATS_PASSWORD_FILE ? await readSecretFile("NATS_PASSWORD_FILE", config.NATS_PASSWORD_FILE) : config.NATS_PASSWORD;
    if (!password) throw new Error("NATS_USER is set but its password is empty");
    options.authenticator = usernamePasswordAuthenticator(config.NATS_USER, () => password);
  }
  return options;
}

/** The servers in NATS_URL as they may be logged: scheme, host and port, never a user or password in the URL. */
export function natsServersShown(url: string): string[] {
  return url
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      try {
        const u = new URL(s.includes("://") ? s : `nats://${s}`);
        return `${u.protocol}//${u.host}`;
      } catch {
        return "(unparsable server)";
      }
    });
}

/** How the node proves itself to NATS, by name only. */
export function natsAuthShown(config: Config): "nkey" | "user and password" | "none" {
  return config.NATS_NKEY_SEED_FILE ? "nkey" : config.NATS_USER ? "user and password" : "none";
}

/** A one-line secret from a file: surrounding whitespace (the trailing newline) dropped. */
async function readSecretFile(variable: string, path: string): Promise<string> {
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch {
    throw new Error(`${variable}: cannot read ${path}`);
  }
  const secret = text.trim();
  if (!secret) throw new Error(`${variable}: ${path} is empty`);
  return secret;
}
