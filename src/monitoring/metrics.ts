import type { Context } from "hono";
import { matchedRoutes } from "hono/route";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ActorKindName } from "../../actors/envelope";
import type { ActorHost } from "../../actors/host";
import type { Db } from "../../lib/db";
import { ERROR_STATUS } from "../../lib/errors";
import { log, reason } from "../../lib/log";
import { NETWORKS } from "../../lib/networks";
import { backlog } from "../workers/event-cursor";

/**
 * Prometheus metrics, one registry per node (several nodes in one test process never share a
 * series), through `prom-client`: the standard client for Node and Bun, well kept, and the one
 * whose text output every Prometheus version reads.
 *
 * Every label value is drawn from a closed set: route patterns (never a raw path), operation
 * names, status codes from the app's own set, tier names, kinds, networks, outcomes. Ids, keys,
 * amounts and callers never become labels: each would be a new series per request.
 *
 * Three ways a number gets here:
 * - recorded as it happens (HTTP and NATS requests, rate-limit refusals, webhooks, alerts), by the
 *   code that sees it calling a method below;
 * - heard from the actor host's events (batch sizes, batch-to-commit latency, idempotent replays);
 * - read on scrape (mailbox depth, live actors, commit totals, outbox backlog and relay lag, open
 *   payouts per network, the node's health): the database ones at a bounded cost and cached for a
 *   moment, so a scrape storm is not a query storm.
 */

/** What a webhook delivery to an app (webhooks out) came to; anything else is counted as `other`. */
export const WEBHOOK_DELIVERY_OUTCOMES = ["delivered", "failed", "timed_out", "refused", "gave_up", "disabled", "other"] as const;
export type WebhookDeliveryOutcome = (typeof WEBHOOK_DELIVERY_OUTCOMES)[number];

/** Alert severities (fraud and transaction monitoring); anything else is counted as `other`. */
export const ALERT_SEVERITIES = ["low", "medium", "high", "critical", "other"] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/**
 * What became of a Stripe webhook as it arrived: `stored` (new, to be processed), `duplicate` (a
 * replay of one already stored), `ignored` (a type no rail handles), `invalid` (the signature did
 * not verify), `unconfigured` (Stripe is not set up on this node), `error` (anything else).
 */
export const STRIPE_WEBHOOK_OUTCOMES = ["stored", "duplicate", "ignored", "invalid", "unconfigured", "error"] as const;
export type StripeWebhookOutcome = (typeof STRIPE_WEBHOOK_OUTCOMES)[number];

const ACTOR_KINDS: readonly ActorKindName[] = ["wallet", "chama", "deposit"];
/** Rate-limit tiers by name (src/security/rate-limit.ts), made known before their first refusal. */
const RATE_TIERS = ["ip/s", "ip/min", "ip/h", "caller/s", "caller/min", "caller/h", "money/s", "money/min", "key/min", "authfail/15min"];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Statuses the app answers with; anything else is shown as its class (`5xx`). */
const STATUSES = new Set([200, 201, 202, 204, 301, 302, 304, 500, 502, 504, ...Object.values(ERROR_STATUS)]);
/** Destination kinds that are not a chain (their `type` names the rail). */
const RAILS = new Set(["bank", "us_bank", "ke_bank", "bank_token", "stripe_account", "wallet", "unknown"]);
const KNOWN_NETWORKS = new Set<string>(NETWORKS);
/** Statuses after which a payout is over; every other status is an open payout. */
const ENDED_WITHDRAWAL = ["completed", "failed", "cancelled", "returned"];
const ENDED_CHAMA_WITHDRAWAL = ["completed", "failed", "cancelled", "rejected", "expired"];

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/** A database read made on scrape may take this long at most. */
const SCRAPE_STATEMENT_TIMEOUT_MS = 2_000;

export interface MetricsOptions {
  /** How long the outbox and health readings are reused (default 2 s). */
  outboxCacheMs?: number;
  /** How long the open-payout reading is reused (default 10 s: it reads the withdrawal tables). */
  payoutsCacheMs?: number;
}

/** Where the scrape-time readings come from; given once the node has them (`watch`). */
export interface MetricsSources {
  db: Db;
  host: ActorHost;
  /** The node's own liveness, as `/health` judges it (cluster membership; the database is asked here). */
  healthy?: () => boolean;
}

export class CofferMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;
  private readonly stops: (() => void)[] = [];
  private readonly batchStartedMs = new Map<string, number>();

  private readonly httpRequests = new Counter({ name: "coffer_http_requests_total", help: "HTTP requests answered, by method, route pattern and status.", labelNames: ["method", "route", "status"] as const, registers: [this.registry] });
  private readonly httpSeconds = new Histogram({ name: "coffer_http_request_duration_seconds", help: "Time to answer an HTTP request, by method, route pattern and status.", labelNames: ["method", "route", "status"] as const, buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly natsRequests = new Counter({ name: "coffer_nats_requests_total", help: "NATS API requests answered, by operation and status.", labelNames: ["operation", "status"] as const, registers: [this.registry] });
  private readonly natsSeconds = new Histogram({ name: "coffer_nats_request_duration_seconds", help: "Time to answer a NATS API request, by operation and status.", labelNames: ["operation", "status"] as const, buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly batchSize = new Histogram({ name: "coffer_actor_batch_size", help: "Commands an actor applied and committed together, by actor kind.", labelNames: ["kind"] as const, buckets: BATCH_BUCKETS, registers: [this.registry] });
  private readonly commitSeconds = new Histogram({ name: "coffer_actor_commit_seconds", help: "From a batch leaving an actor's mailbox to its callers being answered after the commit, by actor kind.", labelNames: ["kind"] as const, buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly replays = new Counter({ name: "coffer_idempotent_replays_total", help: "Commands an actor answered with the remembered outcome of the same idempotency key, by actor kind.", labelNames: ["kind"] as const, registers: [this.registry] });
  private readonly rateRefusals = new Counter({ name: "coffer_rate_limit_refusals_total", help: "Requests refused by a rate limit (429), by tier.", labelNames: ["tier"] as const, registers: [this.registry] });
  private readonly stripeWebhooks = new Counter({ name: "coffer_stripe_webhooks_received_total", help: "Stripe webhooks received, by what became of them.", labelNames: ["outcome"] as const, registers: [this.registry] });
  private readonly webhooksOut = new Counter({ name: "coffer_webhook_deliveries_out_total", help: "Webhook deliveries to apps' endpoints, by outcome.", labelNames: ["outcome"] as const, registers: [this.registry] });
  private readonly alerts = new Counter({ name: "coffer_alerts_total", help: "Monitoring alerts raised, by severity.", labelNames: ["severity"] as const, registers: [this.registry] });

  constructor(private readonly options: MetricsOptions = {}) {
    for (const kind of ACTOR_KINDS) this.replays.inc({ kind }, 0);
    for (const tier of RATE_TIERS) this.rateRefusals.inc({ tier }, 0);
    for (const outcome of STRIPE_WEBHOOK_OUTCOMES) this.stripeWebhooks.inc({ outcome }, 0);
    for (const outcome of WEBHOOK_DELIVERY_OUTCOMES) this.webhooksOut.inc({ outcome }, 0);
    for (const severity of ALERT_SEVERITIES) this.alerts.inc({ severity }, 0);
    this.scrapeGauges();
  }

  /** The content type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The whole exposition: this node's series, then the process's (CPU, memory, event loop, fds). */
  async text(): Promise<string> {
    const [node, proc] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    return `${node}\n${proc}`;
  }

  /** Start reading from the node's database and actor host (on scrape, and from the host's events). */
  watch(sources: MetricsSources): void {
    this.sources = sources;
    const { host } = sources;
    this.stops.push(
      host.on("batch", (e) => {
        this.batchSize.observe({ kind: e.kind }, e.size);
        this.batchStartedMs.set(e.id, performance.now());
      }),
      host.on("committed", (e) => {
        const started = this.batchStartedMs.get(e.id);
        this.batchStartedMs.delete(e.id);
        if (started !== undefined) this.commitSeconds.observe({ kind: e.kind }, (performance.now() - started) / 1000);
      }),
      host.on("replayed", (e) => this.replays.inc({ kind: e.kind }, e.count)),
      host.on("dropped", (e) => this.batchStartedMs.delete(e.id)),
    );
  }

  /** Stop listening to the host (the node is closing). */
  close(): void {
    for (const stop of this.stops.splice(0)) stop();
    this.batchStartedMs.clear();
  }

  /** One HTTP request answered. `route` is the route pattern (see `routeOf`), never the raw path. */
  http(method: string, route: string, status: number, seconds: number): void {
    const labels = { method: METHODS.has(method) ? method : "OTHER", route, status: statusLabel(status) };
    this.httpRequests.inc(labels);
    this.httpSeconds.observe(labels, seconds);
  }

  /** One NATS API request answered; `operation` is an operation table name, or `unknown`. */
  nats(operation: string, status: number, seconds: number): void {
    const labels = { operation, status: statusLabel(status) };
    this.natsRequests.inc(labels);
    this.natsSeconds.observe(labels, seconds);
  }

  /** A request refused by a rate limit, by the tier's name (`ip/s`, `money/min`, `authfail/15min`, …). */
  rateLimited(tier: string): void {
    this.rateRefusals.inc({ tier: /^[a-z]+\/[0-9a-z]+$/.test(tier) ? tier : "other" });
  }

  stripeWebhook(outcome: StripeWebhookOutcome): void {
    this.stripeWebhooks.inc({ outcome });
  }

  webhookDeliveryOut(outcome: WebhookDeliveryOutcome): void {
    this.webhooksOut.inc({ outcome: (WEBHOOK_DELIVERY_OUTCOMES as readonly string[]).includes(outcome) ? outcome : "other" });
  }

  alert(severity: AlertSeverity): void {
    this.alerts.inc({ severity: (ALERT_SEVERITIES as readonly string[]).includes(severity) ? severity : "other" });
  }

  /** The series read on scrape. */
  private scrapeGauges(): void {
    const self = this;
    const registers = [this.registry];
    new Gauge({
      name: "coffer_actor_mailbox_depth",
      help: "Commands waiting in every actor mailbox on this node.",
      registers,
      collect() {
        this.set(self.sources?.host.mailboxDepth ?? 0);
      },
    });
    new Gauge({
      name: "coffer_actors_live",
      help: "Actors (wallets, chamas, deposits) held in memory on this node.",
      registers,
      collect() {
        this.set(self.sources?.host.size ?? 0);
      },
    });
    // The wallets' group commit keeps running totals; each scrape adds what grew since the last.
    const seen = { transactions: 0, batches: 0, busyMs: 0, refused: 0 };
    const commitCounter = (name: string, help: string, field: keyof typeof seen, scale = 1) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = self.sources?.host.commitStats[field] ?? seen[field];
          if (now > seen[field]) this.inc(((now - seen[field]) * scale));
          seen[field] = Math.max(seen[field], now);
        },
      });
    commitCounter("coffer_commit_transactions_total", "Group-commit transactions of wallet batches.", "transactions");
    commitCounter("coffer_commit_wallet_batches_total", "Wallet batches written by group commits (batches per transaction = this / transactions).", "batches");
    commitCounter("coffer_commit_refused_total", "Wallet batches refused because too many were waiting to commit (503 OVERLOADED).", "refused");
    commitCounter("coffer_commit_busy_seconds_total", "Time spent in group-commit transactions.", "busyMs", 1 / 1000);

    const outbox = this.cached(this.options.outboxCacheMs ?? 2_000, async (db) => {
      // Behind the relay's cursor: an index range on (xid, seq) of the outbox and of the event-carrying movements.
      const waiting = await backlog(db, "relay");
      return { backlog: waiting.events, lagS: (waiting.oldestMs ?? 0) / 1000 };
    });
    new Gauge({
      name: "coffer_outbox_backlog",
      help: "Outbox events not yet published to JetStream (the whole cluster's: every node reports the same).",
      registers,
      async collect() {
        const reading = await outbox();
        if (reading) this.set(reading.backlog);
        else this.reset();
      },
    });
    new Gauge({
      name: "coffer_outbox_relay_lag_seconds",
      help: "Age of the oldest outbox event not yet published (0 when none waits).",
      registers,
      async collect() {
        const reading = await outbox();
        if (reading) this.set(reading.lagS);
        else this.reset();
      },
    });

    const payouts = this.cached(this.options.payoutsCacheMs ?? 10_000, (db) => openPayouts(db));
    new Gauge({
      name: "coffer_payouts_open",
      help: "Payouts not yet over (wallet withdrawals and chama withdrawals), by kind, network (or bank rail) and status.",
      labelNames: ["kind", "network", "status"] as const,
      registers,
      async collect() {
        const rows = await payouts();
        this.reset();
        for (const r of rows ?? []) this.set({ kind: r.kind, network: r.network, status: r.status }, r.count);
      },
    });
    new Gauge({
      name: "coffer_payouts_oldest_open_seconds",
      help: "Age (since requested) of the oldest payout not yet over, by kind, network and status.",
      labelNames: ["kind", "network", "status"] as const,
      registers,
      async collect() {
        const rows = await payouts();
        this.reset();
        for (const r of rows ?? []) this.set({ kind: r.kind, network: r.network, status: r.status }, r.oldestS);
      },
    });

    const health = this.cached(this.options.outboxCacheMs ?? 2_000, async (db) => {
      if (self.sources?.healthy && !self.sources.healthy()) return false;
      await db`select 1`;
      return true;
    });
    new Gauge({
      name: "coffer_node_healthy",
      help: "1 when this node would answer /health with 200 (the database answers, cluster membership is healthy), else 0.",
      registers,
      async collect() {
        this.set((await health()) ? 1 : 0);
      },
    });
  }

  /**
   * A database reading, shared by the scrapes within `ttlMs` of it and by those that arrive while it
   * is under way; undefined when it failed (logged) or there is no database yet.
   */
  private cached<T>(ttlMs: number, read: (db: Db) => Promise<T>): () => Promise<T | undefined> {
    let last: { at: number; value: T | undefined } | undefined;
    let pending: Promise<T | undefined> | undefined;
    return () => {
      if (last && performance.now() - last.at < ttlMs) return Promise.resolve(last.value);
      if (pending) return pending;
      const db = this.sources?.db;
      if (!db) return Promise.resolve(undefined);
      pending = withStatementTimeout(db, read)
        .catch((error) => {
          log("warn", "metrics: a reading failed", { error: reason(error) });
          return undefined;
        })
        .then((value) => {
          last = { at: performance.now(), value };
          return value;
        })
        .finally(() => (pending = undefined));
      return pending;
    };
  }
}

interface OpenPayouts {
  kind: "wallet" | "chama";
  network: string;
  status: string;
  count: number;
  oldestS: number;
}

/**
 * Open payouts by network and status. Ended ones are left out: they only grow, and their counts are
 * for `/admin/stats`. The tables have no index on status, so this reads them through; it runs at
 * most once per cache period, with a statement timeout.
 */
async function openPayouts(db: Db): Promise<OpenPayouts[]> {
  const rows = await db`
    select kind, network, status, count(*)::int as n, extract(epoch from now() - min(created_at))::float8 as oldest_s from (
      select 'wallet' as kind, destination->'masked' as masked, status, created_at from withdrawals
        where status <> all(${db.array(ENDED_WITHDRAWAL)}::text[])
      union all
      select 'chama', destination->'masked', status, created_at from chama_withdrawals
        where status <> all(${db.array(ENDED_CHAMA_WITHDRAWAL)}::text[])
    ) w
    cross join lateral (select case when masked->>'type' = 'crypto' then masked->>'network' else masked->>'type' end as network) n
    group by 1, 2, 3`;
  // Label values from closed sets only, whatever a row holds.
  const merged = new Map<string, OpenPayouts>();
  for (const r of rows) {
    const network = String(r.network ?? "unknown");
    const status = String(r.status);
    const row: OpenPayouts = {
      kind: r.kind === "chama" ? "chama" : "wallet",
      network: KNOWN_NETWORKS.has(network) || RAILS.has(network) ? network : "other",
      status: /^[a-z_]{1,32}$/.test(status) ? status : "other",
      count: Number(r.n),
      oldestS: Math.max(0, Number(r.oldest_s)),
    };
    const key = `${row.kind}|${row.network}|${row.status}`;
    const prior = merged.get(key);
    merged.set(key, prior ? { ...row, count: prior.count + row.count, oldestS: Math.max(prior.oldestS, row.oldestS) } : row);
  }
  return [...merged.values()];
}

function withStatementTimeout<T>(db: Db, read: (db: Db) => Promise<T>): Promise<T> {
  return db.begin(async (sql) => {
    await sql`select set_config('statement_timeout', ${String(SCRAPE_STATEMENT_TIMEOUT_MS)}, true)`;
    return read(sql as unknown as Db);
  }) as Promise<T>;
}

/** A status as a label: the code when it is one the app answers with, else its class (`5xx`). */
export function statusLabel(status: number): string {
  return STATUSES.has(status) ? String(status) : `${Math.floor(status / 100)}xx`;
}

/**
 * The route pattern an HTTP request matched (`/v1/wallets/:walletId/payments`), even when a
 * middleware answered before the route's handler ran (401, 429); `unmatched` when no route took
 * the path (404, 405). Never the raw path: ids stay out of labels.
 */
export function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    if (routes[i]!.method !== "ALL") return routes[i]!.path;
  }
  return "unmatched";
}

/** Count one webhook delivery to an app's endpoint (the webhooks-out worker calls this). */
export function countWebhookDeliveryOut(metrics: CofferMetrics | undefined, outcome: WebhookDeliveryOutcome): void {
  metrics?.webhookDeliveryOut(outcome);
}

/** Count one alert raised by transaction monitoring (the monitoring worker calls this). */
export function countAlert(metrics: CofferMetrics | undefined, severity: AlertSeverity): void {
  metrics?.alert(severity);
}

let processMetrics: Registry | undefined;

/**
 * The process's own series (`process_*`, `nodejs_*`: CPU, memory, open fds, event-loop lag, heap),
 * in one registry per process, made on first use. They describe the process, not a node, and
 * `collectDefaultMetrics` starts an event-loop monitor that cannot be stopped: once per process,
 * however many nodes a test starts. (Under Bun every series but the GC histogram is there: Bun
 * reports no GC performance entries.)
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

export interface MetricsListen {
  METRICS_PORT?: number | undefined;
  METRICS_HOST: string;
}

export interface MetricsServer {
  url: string;
  hostname: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * `GET /metrics` on a listener of its own (METRICS_PORT, on METRICS_HOST: 127.0.0.1 unless told
 * otherwise), apart from the API: nothing on the public port reveals the node's internals, and
 * Prometheus needs no credential because only what can reach that address can scrape. Undefined
 * when METRICS_PORT is unset (no metrics listener).
 */
export function startMetricsServer(metrics: CofferMetrics, listen: MetricsListen): MetricsServer | undefined {
  if (listen.METRICS_PORT === undefined) return undefined;
  const server = Bun.serve({
    port: listen.METRICS_PORT,
    hostname: listen.METRICS_HOST,
    maxRequestBodySize: 1024,
    async fetch(req) {
      const { pathname } = new URL(req.url);
      if (pathname !== "/metrics") return new Response("not found\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      const body = await metrics.text();
      return new Response(req.method === "HEAD" ? null : body, { headers: { "content-type": metrics.contentType, "cache-control": "no-store" } });
    },
    error() {
      return new Response("metrics unavailable\n", { status: 500 });
    },
  });
  const hostname = server.hostname ?? listen.METRICS_HOST;
  const port = server.port ?? listen.METRICS_PORT;
  return {
    url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/metrics`,
    hostname,
    port,
    stop: () => server.stop(true),
  };
}
