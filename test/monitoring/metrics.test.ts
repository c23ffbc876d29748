import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { loadConfig } from "../../src/config";
import { CofferMetrics, countAlert, countWebhookDeliveryOut, startMetricsServer, type MetricsServer } from "../../src/monitoring/metrics";
import { STRIPE_WEBHOOK_PATH } from "../../src/http/stripe-webhook";
import { tokenFor, type As } from "../support/auth";
import { deleteClusterState } from "../support/nats";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { parsePrometheusText, type Family } from "../support/prometheus";

/**
 * `GET /metrics` of a real node after real traffic, REST and NATS: payments that succeed, one
 * refused for want of funds, a retried key, calls past the money tier's limit, an unknown route
 * and an unknown NATS operation with ids in them. The scrape must parse as Prometheus text, hold
 * the named series with the expected labels, and never a label value made from an id. And the
 * example alert rules must name only series that are there.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `coffertest${crypto.randomUUID().slice(0, 8)}`;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const PAYMENTS_ROUTE = "/v1/wallets/:walletId/payments";
const MONEY_PER_MINUTE = 5;

let t: TestNode;
let nc: NatsConnection;
let server: MetricsServer;
let text: string;
let families: Map<string, Family>;

const restUser: As = { sub: "metrics-rest", role: "user" };
const natsUser: As = { sub: "metrics-nats", role: "user" };
const limitedUser: As = { sub: "metrics-limited", role: "user" };

async function nats(operation: string, payload: unknown, as: As, key: string | null = crypto.randomUUID()): Promise<{ status: number; body: any }> {
  const h = headers();
  h.set("Authorization", `Bearer ${await tokenFor(as)}`);
  if (key) h.set("Idempotency-Key", key);
  const reply = await nc.request(`${PREFIX}.v1.${operation}`, JSON.stringify(payload), { timeout: 5_000, headers: h });
  return JSON.parse(reply.string());
}

beforeAll(async () => {
  t = await startTestNode("metrics", {
    NATS_URL,
    NATS_SUBJECT_PREFIX: PREFIX,
    RATE_LIMITS: "on",
    RATE_MONEY_PER_MINUTE: String(MONEY_PER_MINUTE),
    RATE_IP_PER_SECOND: "1000",
  });
  nc = await connect({ servers: NATS_URL });
  // The node's own listener, configured as `bun start` would be with METRICS_PORT=0 and no METRICS_HOST.
  server = startMetricsServer(t.node.metrics, loadConfig({ METRICS_PORT: "0" }))!;

  // REST: a payment, the same key again (replayed by the actor), one refused for want of funds,
  // one without a credential.
  const a = await fundedWallet(t.api, "USD", "10.00", restUser.sub);
  const key = crypto.randomUUID();
  expect((await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "1.00" }, { as: restUser, key })).status).toBe(201);
  expect((await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "1.00" }, { as: restUser, key })).status).toBe(201);
  expect((await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "100.00" }, { as: restUser })).status).toBe(409);
  expect((await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "1.00" }, { token: null })).status).toBe(401);
  // A path no route takes, with an id in it: counted as `unmatched`, never by its path.
  expect((await t.api("GET", `/v1/nothing-here/${crypto.randomUUID()}`)).status).toBe(404);
  // Past the money tier: MONEY_PER_MINUTE payments get through, the rest are 429.
  const c = await fundedWallet(t.api, "USD", "10.00", limitedUser.sub);
  const limited = [];
  for (let i = 0; i < MONEY_PER_MINUTE + 2; i++) limited.push((await t.api("POST", `/v1/wallets/${c}/payments`, { amount: "0.01" }, { as: limitedUser })).status);
  expect(limited.filter((s) => s === 429)).toHaveLength(2);
  // Open payouts on two rails: a bank account and the Bitcoin network.
  const usd = await fundedWallet(t.api, "USD", "10.00");
  expect((await t.api("POST", `/v1/wallets/${usd}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "DE89370400440532013000" } })).status).toBe(201);
  const btc = await fundedWallet(t.api, "BTC", "1");
  expect((await t.api("POST", `/v1/wallets/${btc}/withdrawals`, { amount: "0.1", destination: { type: "crypto", network: "bitcoin", address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" } })).status).toBe(201);
  // A Stripe webhook with a bad signature.
  expect((await fetch(t.baseUrl + STRIPE_WEBHOOK_PATH, { method: "POST", headers: { "stripe-signature": "t=1,v1=00" }, body: "{}" })).status).toBe(400);

  // NATS: a payment, one refused, and an operation that does not exist, named by an id.
  const b = await fundedWallet(t.api, "USD", "10.00", natsUser.sub);
  expect((await nats("wallets.payments.create", { walletId: b, amount: "2.00" }, natsUser)).status).toBe(201);
  expect((await nats("wallets.payments.create", { walletId: b, amount: "50.00" }, natsUser)).status).toBe(409);
  expect((await nats(crypto.randomUUID(), {}, natsUser)).status).toBe(404);

  // What the webhooks-out and monitoring workers will count.
  countWebhookDeliveryOut(t.node.metrics, "delivered");
  countWebhookDeliveryOut(t.node.metrics, "timed_out");
  countAlert(t.node.metrics, "high");

  const res = await fetch(server.url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  text = await res.text();
  families = parsePrometheusText(text);
});

afterAll(async () => {
  await server?.stop();
  await nc?.drain();
  await t?.stop();
  await deleteClusterState(PREFIX, `${PREFIX}l`);
});

/** The samples of `name` (a family's own name or its `_bucket`/`_sum`/`_count`) whose labels include `labels`. */
function samples(name: string, labels: Record<string, string> = {}) {
  const family = families.get(name.replace(/_(bucket|sum|count)$/, "")) ?? families.get(name);
  return (family?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(name: string, labels: Record<string, string> = {}): number {
  return samples(name, labels).reduce((sum, s) => sum + s.value, 0);
}

describe("the scrape", () => {
  test("parses as Prometheus text, every family typed and described", () => {
    expect(families.size).toBeGreaterThan(20);
    for (const f of families.values()) {
      expect(f.type).not.toBe("untyped");
      expect(f.help?.length ?? 0).toBeGreaterThan(0);
    }
  });

  test("the strict reader refuses what Prometheus would", () => {
    const bad = [
      "no_type 1",
      "# TYPE x counter\nx{a=\"1\"} one",
      "# TYPE x counter\nx{a=1} 1",
      "# TYPE x counter\nx{a=\"1\",a=\"2\"} 1",
      "# TYPE x counter\nx 1\nx 2",
      "# TYPE x counter\nx{a=\"\\q\"} 1",
      "# TYPE x counter\n# TYPE y counter\ny 1\nx 1\ny 2",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1",
      "# TYPE x gauge\nx  1",
    ];
    for (const text of bad) expect(() => parsePrometheusText(text)).toThrow();
    expect(parsePrometheusText('# HELP x a "help"\n# TYPE x gauge\nx{a="q\\"\\n\\\\"} -Inf\n').get("x")!.samples[0]!.labels.a).toBe('q"\n\\');
  });

  test("no label value is an id: not one UUID anywhere in it", () => {
    expect(text).not.toMatch(UUID);
  });

  test("HTTP requests by method, route pattern and status, the refused and the unauthenticated ones under their route", () => {
    const routes = new Set(t.node.http.routes.map((r) => r.path));
    for (const s of samples("coffer_http_requests_total")) {
      expect(Object.keys(s.labels).sort()).toEqual(["method", "route", "status"]);
      expect(s.labels.route === "unmatched" || routes.has(s.labels.route!)).toBe(true);
      expect(s.labels.status).toMatch(/^([1-5][0-9]{2}|[1-5]xx)$/);
    }
    expect(value("coffer_http_requests_total", { method: "POST", route: PAYMENTS_ROUTE, status: "201" })).toBe(2 + MONEY_PER_MINUTE);
    expect(value("coffer_http_requests_total", { method: "POST", route: PAYMENTS_ROUTE, status: "409" })).toBe(1);
    expect(value("coffer_http_requests_total", { method: "POST", route: PAYMENTS_ROUTE, status: "401" })).toBe(1);
    expect(value("coffer_http_requests_total", { method: "POST", route: PAYMENTS_ROUTE, status: "429" })).toBe(2);
    expect(value("coffer_http_requests_total", { method: "GET", route: "unmatched", status: "404" })).toBe(1);
    expect(value("coffer_http_requests_total", { method: "POST", route: STRIPE_WEBHOOK_PATH, status: "400" })).toBe(1);
  });

  test("HTTP latency is a histogram with buckets, sum and count that agree with the counter", () => {
    const labels = { method: "POST", route: PAYMENTS_ROUTE, status: "201" };
    expect(families.get("coffer_http_request_duration_seconds")!.type).toBe("histogram");
    const buckets = samples("coffer_http_request_duration_seconds_bucket", labels);
    expect(buckets.length).toBeGreaterThan(5);
    expect(buckets.at(-1)!.labels.le).toBe("+Inf");
    expect(value("coffer_http_request_duration_seconds_count", labels)).toBe(value("coffer_http_requests_total", labels));
    expect(value("coffer_http_request_duration_seconds_sum", labels)).toBeGreaterThan(0);
  });

  test("NATS requests by operation name and status; an unknown operation is `unknown`, not its subject", () => {
    expect(value("coffer_nats_requests_total", { operation: "wallets.payments.create", status: "201" })).toBe(1);
    expect(value("coffer_nats_requests_total", { operation: "wallets.payments.create", status: "409" })).toBe(1);
    expect(value("coffer_nats_requests_total", { operation: "unknown", status: "404" })).toBe(1);
    expect(value("coffer_nats_request_duration_seconds_count", { operation: "wallets.payments.create" })).toBe(2);
    for (const s of samples("coffer_nats_requests_total")) expect(s.labels.operation).toMatch(/^([a-z]+(\.[a-z]+)*|unknown)$/);
  });

  test("actors: mailbox depth and live actors, batch sizes and commit latency by kind, replays of a retried key", () => {
    expect(families.get("coffer_actor_mailbox_depth")!.type).toBe("gauge");
    expect(value("coffer_actor_mailbox_depth")).toBe(0);
    expect(value("coffer_actors_live")).toBeGreaterThan(0);
    expect(families.get("coffer_actor_batch_size")!.type).toBe("histogram");
    expect(value("coffer_actor_batch_size_count", { kind: "wallet" })).toBeGreaterThan(5);
    expect(value("coffer_actor_commit_seconds_count", { kind: "wallet" })).toBe(value("coffer_actor_batch_size_count", { kind: "wallet" }));
    expect(value("coffer_idempotent_replays_total", { kind: "wallet" })).toBe(1);
    expect(value("coffer_commit_transactions_total")).toBeGreaterThan(0);
    expect(value("coffer_commit_wallet_batches_total")).toBeGreaterThanOrEqual(value("coffer_commit_transactions_total"));
  });

  test("rate-limit refusals by tier", () => {
    expect(value("coffer_rate_limit_refusals_total", { tier: "money/min" })).toBe(2);
    expect(samples("coffer_rate_limit_refusals_total").map((s) => s.labels.tier)).toContain("ip/s");
  });

  test("outbox backlog and relay lag, open payouts per network, node health", () => {
    expect(samples("coffer_outbox_backlog")).toHaveLength(1);
    expect(value("coffer_outbox_relay_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(value("coffer_payouts_open", { kind: "wallet", network: "bank", status: "requested" })).toBe(1);
    expect(value("coffer_payouts_open", { kind: "wallet", network: "bitcoin", status: "requested" })).toBe(1);
    expect(value("coffer_payouts_oldest_open_seconds", { kind: "wallet", network: "bitcoin", status: "requested" })).toBeGreaterThanOrEqual(0);
    expect(value("coffer_node_healthy")).toBe(1);
  });

  test("webhooks in and out, alerts by severity, every outcome there from the start", () => {
    expect(value("coffer_stripe_webhooks_received_total", { outcome: "invalid" })).toBe(1);
    expect(value("coffer_stripe_webhooks_received_total", { outcome: "stored" })).toBe(0);
    expect(value("coffer_webhook_deliveries_out_total", { outcome: "delivered" })).toBe(1);
    expect(value("coffer_webhook_deliveries_out_total", { outcome: "timed_out" })).toBe(1);
    expect(value("coffer_webhook_deliveries_out_total", { outcome: "failed" })).toBe(0);
    expect(value("coffer_alerts_total", { severity: "high" })).toBe(1);
    expect(value("coffer_alerts_total", { severity: "low" })).toBe(0);
  });

  test("the process's own series (Node/Bun defaults) are there under Bun", () => {
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "nodejs_eventloop_lag_seconds", "nodejs_heap_size_used_bytes"]) {
      expect(samples(name).length).toBe(1);
    }
  });

  test("two nodes' registries in one process do not share a series", async () => {
    const one = new CofferMetrics();
    const two = new CofferMetrics();
    one.http("GET", "/health", 200, 0.001);
    expect(one.registry.getSingleMetric("coffer_http_requests_total")).not.toBe(two.registry.getSingleMetric("coffer_http_requests_total"));
    expect(await one.registry.metrics()).toContain('coffer_http_requests_total{method="GET",route="/health",status="200"} 1');
    expect(await two.registry.metrics()).not.toContain('route="/health"');
  });
});

describe("exposure", () => {
  test("the metrics listener is bound to loopback by default, and only serves GET /metrics", async () => {
    expect(server.hostname).toBe("127.0.0.1");
    expect(new URL(server.url).hostname).toBe("127.0.0.1");
    expect((await fetch(server.url.replace("/metrics", "/"))).status).toBe(404);
    expect((await fetch(server.url, { method: "POST" })).status).toBe(405);
    const head = await fetch(server.url, { method: "HEAD" });
    expect(head.status).toBe(200);
  });

  test("from another address of this machine, nothing answers on the metrics port", async () => {
    const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal);
    if (!external) return; // no other interface here: the bind address above is the whole story
    const refused = await fetch(`http://${external.address}:${server.port}/metrics`, { signal: AbortSignal.timeout(2_000) }).then(
      () => false,
      () => true,
    );
    expect(refused).toBe(true);
  });

  test("the API port does not serve metrics, whoever asks", async () => {
    const res = await t.api("GET", "/metrics");
    expect(res.status).toBe(404);
    expect(JSON.stringify(res.body)).not.toContain("coffer_");
  });

  test("without METRICS_PORT there is no metrics listener", () => {
    expect(startMetricsServer(t.node.metrics, loadConfig({}))).toBeUndefined();
  });
});

describe("the example alert rules (deploy/prometheus/coffer-rules.yml)", () => {
  const PROMQL_WORDS = new Set(["sum", "rate", "increase", "max", "min", "avg", "by", "without", "histogram_quantile", "vector", "or", "and", "unless", "on", "ignoring", "le", "bool"]);

  async function rules() {
    const doc = Bun.YAML.parse(await Bun.file(new URL("../../deploy/prometheus/coffer-rules.yml", import.meta.url).pathname).text()) as any;
    return (doc.groups as any[]).flatMap((g) => g.rules.map((r: any) => ({ ...r, group: g.name })));
  }

  test("is a Prometheus rules file: named groups of alerts, each with an expression, a duration, a severity and a summary", async () => {
    const doc = Bun.YAML.parse(await Bun.file(new URL("../../deploy/prometheus/coffer-rules.yml", import.meta.url).pathname).text()) as any;
    expect(Object.keys(doc)).toEqual(["groups"]);
    const names = new Set<string>();
    for (const group of doc.groups) {
      expect(group.name).toMatch(/^[a-z.]+$/);
      expect(group.rules.length).toBeGreaterThan(0);
      for (const rule of group.rules) {
        expect(Object.keys(rule).every((k) => ["alert", "expr", "for", "labels", "annotations"].includes(k))).toBe(true);
        expect(rule.alert).toMatch(/^Coffer[A-Za-z]+$/);
        expect(names.has(rule.alert)).toBe(false);
        names.add(rule.alert);
        expect(typeof rule.expr).toBe("string");
        expect(rule.for).toMatch(/^[0-9]+[smh]$/);
        expect(["page", "ticket"]).toContain(rule.labels.severity);
        expect(rule.annotations.summary.length).toBeGreaterThan(0);
        // Balanced brackets and quotes: the least a PromQL expression must have.
        const expr: string = rule.expr;
        for (const [open, close] of [["(", ")"], ["{", "}"], ["[", "]"]] as const) expect(expr.split(open).length).toBe(expr.split(close).length);
        expect((expr.match(/"/g) ?? []).length % 2).toBe(0);
      }
    }
  });

  test("covers the seeds' thresholds: failure rate, payment latency, 30-minute payouts, rate-limit spikes, outbox lag, node health", async () => {
    const all = await rules();
    const find = (name: string) => all.find((r) => r.alert === name);
    expect(find("CofferHighErrorRate").expr).toContain("> 0.05");
    expect(find("CofferPaymentFailureRate").expr).toContain("> 0.05");
    expect(find("CofferPaymentLatencyCritical").expr).toContain("histogram_quantile(0.99");
    expect(find("CofferPayoutPendingTooLong").expr).toContain("> 1800");
    expect(find("CofferRateLimitSpike").expr).toContain("coffer_rate_limit_refusals_total");
    expect(find("CofferOutboxLagging").expr).toContain("coffer_outbox_relay_lag_seconds");
    expect(find("CofferNodeUnhealthy").expr).toContain("coffer_node_healthy");
  });

  test("every expression names series Coffer exports, with labels those series have", async () => {
    const labelsOf = (name: string) => new Set(samples(name).flatMap((s) => Object.keys(s.labels)));
    for (const rule of await rules()) {
      const expr: string = rule.expr;
      // Selectors with matchers: the series must exist and carry every label matched on.
      for (const [, name, matchers] of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
        if (name === "up") continue; // Prometheus's own series for a scrape target
        expect({ rule: rule.alert, name, exported: samples(name!).length > 0 }).toEqual({ rule: rule.alert, name, exported: true });
        for (const [, label] of matchers!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
          expect({ rule: rule.alert, name, label, present: labelsOf(name!).has(label!) }).toEqual({ rule: rule.alert, name, label, present: true });
        }
      }
      // Every other bare metric name (outside label matchers and strings) must be exported too.
      const bare = expr.replace(/\{[^}]*\}/g, "").replace(/"[^"]*"/g, "").replace(/\[[^\]]*\]/g, "").replace(/\bby\s*\([^)]*\)/g, "");
      for (const [word] of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
        if (PROMQL_WORDS.has(word) || word === "up") continue;
        expect({ rule: rule.alert, name: word, exported: samples(word).length > 0 }).toEqual({ rule: rule.alert, name: word, exported: true });
      }
    }
  });
});
