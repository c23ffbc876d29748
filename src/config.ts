import { z } from "zod";
import { LIGHTNING_NETWORKS } from "../lib/addresses";
import { publicOrigin } from "../actors/forwarding";

/** Environment, validated once at start-up. A bad value stops the process with a clear message. */
const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Where Prometheus scrapes `GET /metrics`: a listener of its own, apart from the API. Unset: no metrics listener; 0: any free port. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** The address the metrics listener binds: loopback unless told otherwise (a scraper on another host needs e.g. a private address). */
  METRICS_HOST: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, "a host name or IP address").default("127.0.0.1"),
  DATABASE_URL: z.string().url().optional(),
  /** Where `bun start` keeps its embedded Postgres and generated files when DATABASE_URL is unset. */
  COFFER_HOME: z.string().default("./.coffer"),
  /** Largest amount accepted in one request, in major units of any asset. */
  MAX_AMOUNT: z.string().regex(/^[1-9][0-9]{0,30}$/).default("1000000000"),
  /** Commands an actor applies and persists in one transaction at most. */
  ACTOR_BATCH_MAX: z.coerce.number().int().min(1).max(10_000).default(256),
  /** Commands waiting in one actor's mailbox at most; past it callers get 503 OVERLOADED. */
  ACTOR_MAILBOX_MAX: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Transactions one node keeps in flight (over all its commit lanes); batches from many wallets that
   * wait meanwhile share the next one. Per node: several nodes on one Postgres keep this many each,
   * so where the database's CPU is what limits (nodes sharing one small machine with it) split it
   * over them. Three nodes at 4 each on two cores made commits of a third the size and cost Postgres
   * 2-3x the CPU per payment for 1,000 wallets (test/bench/cluster.bench.ts runs them at 1 each).
   */
  COMMIT_IN_FLIGHT_MAX: z.coerce.number().int().min(1).max(64).default(4),
  /**
   * Commit lanes: connections of their own that every commit goes through, a wallet always on the
   * same one (actors/commit-queue.ts). They are taken out of DB_POOL_MAX. 0: commits use the pool,
   * and a wallet's next batch waits for its previous one to commit.
   */
  COMMIT_LANES: z.coerce.number().int().min(0).max(16).default(2),
  /** Statements one commit lane sends without waiting for answers, one behind the other (1: no pipelining). */
  COMMIT_PIPELINE_DEPTH: z.coerce.number().int().min(1).max(16).default(2),
  /** Batches one wallet actor keeps committing at once, each applied on top of the one before it (1: one at a time). */
  ACTOR_CHAIN_MAX: z.coerce.number().int().min(1).max(16).default(2),
  /** Wallets' batches written in one transaction at most. */
  COMMIT_WALLETS_MAX: z.coerce.number().int().min(1).max(10_000).default(128),
  /** Wallets' batches waiting for a transaction at most; past it the wallet's callers get 503 OVERLOADED (nothing written). */
  COMMIT_WAITING_MAX: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /** Live actors (wallets and chamas) one node holds at most; past it the idlest idle ones are passivated, and when all are busy callers get 503 OVERLOADED. */
  ACTORS_MAX: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  /** An actor with nothing to do for this long is dropped from memory (its snapshot stays in Postgres). */
  ACTOR_IDLE_MS: z.coerce.number().int().min(100).default(60_000),
  /** An actor idle this long keeps only its committed state until its next command (actors/host.ts). */
  ACTOR_HIBERNATE_MS: z.coerce.number().int().min(50).default(1_000),
  /** How long an idempotency key's first result is replayed. */
  IDEMPOTENCY_TTL_HOURS: z.coerce.number().int().min(24).default(48),
  /** Access-token keys (see src/security/keys.ts). Default: <COFFER_HOME>/jwt-keys.json, made on first start. */
  JWT_KEYS_FILE: z.string().optional(),
  /** Keys for sealing sensitive fields at rest (src/security/encryption.ts). Default: <COFFER_HOME>/encryption-keys.json, made on first start. */
  ENCRYPTION_KEYS_FILE: z.string().optional(),
  JWT_ISSUER: z.string().min(1).default("coffer"),
  JWT_AUDIENCE: z.string().min(1).default("coffer-api"),
  /** Comma-separated origins allowed to call from a browser (CORS). Empty: off. */
  CORS_ORIGINS: z.string().default(""),
  /** "off" disables every rate limit (benchmarks, trusted test rigs); limits below are per window. */
  RATE_LIMITS: z.enum(["on", "off"]).default("on"),
  RATE_IP_PER_SECOND: z.coerce.number().int().min(1).default(100),
  RATE_IP_PER_MINUTE: z.coerce.number().int().min(1).default(3000),
  RATE_IP_PER_HOUR: z.coerce.number().int().min(1).default(60000),
  RATE_CALLER_PER_SECOND: z.coerce.number().int().min(1).default(100),
  RATE_CALLER_PER_MINUTE: z.coerce.number().int().min(1).default(3000),
  RATE_CALLER_PER_HOUR: z.coerce.number().int().min(1).default(60000),
  /** Payments, withdrawals and transfers, per caller: stricter than everything else. */
  RATE_MONEY_PER_SECOND: z.coerce.number().int().min(1).default(20),
  RATE_MONEY_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  /** Failed authentications per IP per 15 minutes before that IP is locked out for the rest of the window. */
  RATE_AUTH_FAILURES_PER_15_MINUTES: z.coerce.number().int().min(1).default(10),
  /** NATS server(s) for the request-reply API; unset: no NATS API (REST only). */
  NATS_URL: z.string().optional(),
  /** First token of every subject (`<prefix>.v1.wallets.payments.create`); lets several deployments share a NATS. */
  NATS_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default("coffer"),
  /** NATS requests one node has in flight at most, each way: commands it forwards to shard owners, and API requests it serves. */
  NATS_IN_FLIGHT_MAX: z.coerce.number().int().min(1).max(100_000).default(1_024),
  /** NATS requests waiting for an in-flight slot at most, each way; one more is answered 503 OVERLOADED at once. */
  NATS_WAITING_MAX: z.coerce.number().int().min(0).max(1_000_000).default(4_096),
  /** This node's NATS user (deploy/nats/coffer.conf: `coffer-node`); needs NATS_PASSWORD or NATS_PASSWORD_FILE. */
  NATS_USER: z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/).optional(),
  /** The NATS user's password. Never logged (non-enumerable on the Config). Prefer NATS_PASSWORD_FILE. */
  NATS_PASSWORD: z.string().min(1).max(1024).optional(),
  /** A file holding the NATS user's password (one line; the trailing newline is dropped). */
  NATS_PASSWORD_FILE: z.string().min(1).optional(),
  /** A file holding this node's NATS nkey seed (`SU…`), instead of a user and password. */
  NATS_NKEY_SEED_FILE: z.string().min(1).optional(),
  /** This node's name in the cluster (default: a fresh id each start). */
  NODE_ID: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  /**
   * Where callers reach this node directly (`https://node-a.coffer.example.com`): announced in the
   * cluster, and named in the `Coffer-Owner` hint of answers other nodes forwarded here (README
   * "Several nodes"). Optional: without it, no hint names this node.
   */
  PUBLIC_URL: z
    .string()
    .max(512)
    .refine((v) => publicOrigin(v) !== undefined, "an http(s) origin: scheme, host and port only, no path, user or query")
    .transform((v) => publicOrigin(v)!)
    .optional(),
  /** Shards wallets are spread over (never change it on a running cluster: it moves wallets). */
  SHARDS: z.coerce.number().int().min(1).max(4096).default(256),
  /** Life of a shard lease; a node that stops renewing loses its shards after this long. */
  LEASE_TTL_MS: z.coerce.number().int().min(1000).max(60_000).default(5000),
  /** The key nodes sign their messages to each other with (actors/bus/keys.ts). Default: <COFFER_HOME>/cluster-keys.json, made on first start; every node needs the same file. */
  CLUSTER_KEYS_FILE: z.string().optional(),
  /** How far a node message's time may be from the receiver's clock and still be taken (keep node clocks in sync well inside it). */
  BUS_MAX_AGE_MS: z.coerce.number().int().min(1_000).max(300_000).default(15_000),
  DB_POOL_MAX: z.coerce.number().int().min(2).max(500).default(20),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  /** How long a clean shutdown (SIGTERM) may take before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(600_000).default(15_000),
  /**
   * Stripe (card deposits, refunds, disputes; src/integrations/stripe/). Unset: the Stripe routes
   * answer 503 STRIPE_NOT_CONFIGURED and nothing else changes. The secret key (`sk_…` or `rk_…`)
   * and the webhook signing secret (`whsec_…`) go together; neither is ever logged (non-enumerable on
   * the Config, and the redactor knows their shapes).
   */
  STRIPE_SECRET_KEY: z.string().regex(/^(sk|rk)_(test|live)_[A-Za-z0-9_]{4,255}$/, "a Stripe secret key (sk_test_…, sk_live_…)").optional(),
  STRIPE_WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=_]{4,255}$/, "a Stripe webhook signing secret (whsec_…)").optional(),
  /** Where the Stripe API is: Stripe's own by default; anything else (the local stand-in) is passed to the SDK as host, port and protocol. */
  STRIPE_API_BASE: z.string().url().refine((u) => /^https?:$/.test(new URL(u).protocol) && new URL(u).pathname.replace(/\/$/, "") === "", "an http(s) origin, no path").default("https://api.stripe.com"),
  /** How long one Stripe API call may take before it counts as "Stripe did not answer" (503, retry with the same key). */
  STRIPE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /**
   * Webhooks out (src/webhooks/, src/workers/webhook-delivery.ts; README "Webhooks out"). Endpoint
   * URLs must be https to public addresses; an operator may allow named hosts (exact host names or
   * IP literals of the URL, comma-separated) and plain http for receivers inside their network.
   */
  WEBHOOK_ALLOW_HOSTS: z.string().max(4_096).default(""),
  WEBHOOK_ALLOW_HTTP: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  /** One delivery attempt's time limit, up to the receiver's response headers. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** Attempts in flight per node, and per endpoint per node. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1_000).default(16),
  WEBHOOK_ENDPOINT_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(4),
  /** Backoff after a failed attempt: base·2^(n−1), at most max; a delivery is given up after MAX_ATTEMPTS or once MAX_AGE old (3 days). */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).max(86_400_000).default(60_000),
  WEBHOOK_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(12 * 3_600_000),
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(20),
  WEBHOOK_MAX_AGE_MS: z.coerce.number().int().min(1_000).max(30 * 86_400_000).default(3 * 86_400_000),
  /** An endpoint whose attempts failed this many times in a row, over at least this long, is disabled with an alert. */
  WEBHOOK_DISABLE_AFTER_FAILURES: z.coerce.number().int().min(1).max(10_000).default(15),
  WEBHOOK_DISABLE_AFTER_MS: z.coerce.number().int().min(0).max(30 * 86_400_000).default(86_400_000),
  /** How often the delivery worker looks for new events and due retries. */
  WEBHOOK_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
  /** Enabled endpoints per owner at most. */
  WEBHOOK_ENDPOINTS_MAX: z.coerce.number().int().min(1).max(1_000).default(100),
  /** The network Lightning withdrawals' BOLT-11 invoices must be for: lnbc… (bitcoin), lntb… (testnet), lnbcrt… (regtest). */
  LIGHTNING_NETWORK: z.enum(LIGHTNING_NETWORKS).default("bitcoin"),
  /**
   * Transaction monitoring (src/monitoring/): "on" evaluates every money movement from the committed
   * events in the background; "off" leaves it to an operator (tests run it by hand).
   */
  MONITORING: z.enum(["on", "off"]).default("on"),
  /** A JSON file with the monitoring rules and thresholds (src/monitoring/rules.ts); unset: the built-in defaults. An admin's change (POST /admin/monitoring/rules) replaces either. */
  MONITORING_RULES_FILE: z.string().min(1).optional(),
  /** A JSON file of the EVM and Solana networks Coffer pays out on itself (src/integrations/chain/config.ts); unset: none (processors pay every crypto withdrawal). */
  NETWORKS_FILE: z.string().min(1).optional(),
  /** GraphQL (src/graphql/, README "GraphQL"): the limits on one request's document, all on by default. */
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).max(100).default(7),
  /** Each field costs 1; a field with a page size (`limit`) costs its selection that many times. */
  GRAPHQL_MAX_COST: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /** Operations in one batch (a JSON array of requests). */
  GRAPHQL_MAX_BATCH: z.coerce.number().int().min(1).max(100).default(3),
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).max(1_000).default(15),
  GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(0).max(1_000).default(50),
  /** Tokens in one document, counted while parsing (a hostile document stops there). */
  GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(10).max(100_000).default(2000),
  /** A document's size in bytes, checked before parsing (the request body, or a GET's URL). */
  GRAPHQL_MAX_BYTES: z.coerce.number().int().min(256).max(1_000_000).default(20_000),
  /** "on": introspection and field suggestions ("did you mean …") are answered. Unset: on when NODE_ENV=development, off otherwise. */
  GRAPHQL_INTROSPECTION: z.enum(["on", "off"]).optional(),
  /** Only GRAPHQL_INTROSPECTION's default reads it ("development" turns introspection on). */
  NODE_ENV: z.string().max(40).optional(),
}).superRefine((env, ctx) => {
  // One NATS credential, whole: the messages name variables, never their values.
  const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
  if (env.NATS_PASSWORD !== undefined && env.NATS_PASSWORD_FILE !== undefined) issue("NATS_PASSWORD", "set NATS_PASSWORD or NATS_PASSWORD_FILE, not both");
  const hasPassword = env.NATS_PASSWORD !== undefined || env.NATS_PASSWORD_FILE !== undefined;
  if (env.NATS_USER !== undefined && !hasPassword) issue("NATS_USER", "needs NATS_PASSWORD or NATS_PASSWORD_FILE");
  if (env.NATS_USER === undefined && hasPassword) issue("NATS_USER", "required with NATS_PASSWORD or NATS_PASSWORD_FILE");
  if (env.NATS_NKEY_SEED_FILE !== undefined && env.NATS_USER !== undefined) issue("NATS_NKEY_SEED_FILE", "set an nkey seed or a user and password, not both");
  if ((env.STRIPE_SECRET_KEY === undefined) !== (env.STRIPE_WEBHOOK_SECRET === undefined)) issue("STRIPE_SECRET_KEY", "set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET together, or neither");
});

export type Config = z.infer<typeof Env> & { maxAmountMajor: bigint; keysFile: string; vaultFile: string; clusterKeysFile: string; corsOrigins: string[] };

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`invalid configuration: ${fields}`);
  }
  const config: Config = {
    ...parsed.data,
    maxAmountMajor: BigInt(parsed.data.MAX_AMOUNT),
    keysFile: parsed.data.JWT_KEYS_FILE ?? `${parsed.data.COFFER_HOME}/jwt-keys.json`,
    vaultFile: parsed.data.ENCRYPTION_KEYS_FILE ?? `${parsed.data.COFFER_HOME}/encryption-keys.json`,
    clusterKeysFile: parsed.data.CLUSTER_KEYS_FILE ?? `${parsed.data.COFFER_HOME}/cluster-keys.json`,
    corsOrigins: parsed.data.CORS_ORIGINS.split(",").map((o) => o.trim()).filter(Boolean),
  };
  // A secret that is not enumerable never reaches a log line or JSON.stringify(config).
  Object.defineProperty(config, "NATS_PASSWORD", { enumerable: false });
  Object.defineProperty(config, "STRIPE_SECRET_KEY", { enumerable: false });
  Object.defineProperty(config, "STRIPE_WEBHOOK_SECRET", { enumerable: false });
  return config;
}
