import type Stripe from "stripe";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Cluster } from "../../actors/cluster";
import type { Db } from "../../lib/db";
import { backlog } from "../workers/event-cursor";

/**
 * What operators look at before anything else: every part the node depends on, each with its state
 * and how long it took to answer. `GET /admin/health` (admins and auditors); `/health` stays the
 * cheap liveness probe, and `/ready` says whether this node should take traffic.
 *
 * States: `ok`; `degraded` (it answers, but behind: a backlog, a lag); `down` (it does not answer);
 * `not_configured` (the node runs without it: no NATS, no Stripe, no RPC for a network).
 */
export type ComponentState = "ok" | "degraded" | "down" | "not_configured";

export interface Component {
  name: string;
  state: ComponentState;
  latencyMs: number | null;
  /** Numbers and short words about it (backlogs, lags); never a secret, a host or a credential. */
  details?: Record<string, number | string | boolean | null>;
}

/**
 * A probe of one blockchain network's RPC endpoint (the chain integrations register theirs: e.g.
 * `eth_blockNumber` with a short timeout). None is registered until payouts go on chain.
 */
export type NetworkProbe = () => Promise<{ ok: boolean; details?: Record<string, number | string | boolean | null> }>;

export interface HealthSources {
  db: Db;
  nats?: NatsConnection | undefined;
  cluster?: Cluster | undefined;
  /** Present when Stripe is configured. */
  stripe?: Stripe | undefined;
  /** Whether the outbox relay runs here (it needs NATS). */
  relay: boolean;
  /** How far behind transaction monitoring is. */
  monitoringLag?: () => Promise<{ events: number; oldestMs: number | null }>;
}

/** Backlog and lag past which a pipeline counts as degraded, then down. */
const LAG_DEGRADED_MS = 10_000;
const LAG_DOWN_MS = 120_000;
const PROBE_TIMEOUT_MS = 2_000;
/** Stripe is asked at most this often (a cheap list call); the answer in between is the last one. */
const STRIPE_CACHE_MS = 5_000;

export class HealthChecks {
  private readonly networks = new Map<string, NetworkProbe>();
  private stripeCached: { at: number; component: Component } | undefined;
  private stripeInFlight: Promise<Component> | undefined;

  constructor(private readonly sources: HealthSources) {}

  /** The extension point for the chain integrations: one probe per network, by its name (`ethereum`, `solana`…). */
  registerNetwork(network: string, probe: NetworkProbe): void {
    this.networks.set(network, probe);
  }

  async report() {
    const components = await Promise.all([
      this.database(),
      this.nats(),
      this.cluster(),
      this.relay(),
      this.outbox(),
      this.monitoring(),
      this.stripe(),
      ...[...this.networks].map(([name, probe]) => this.network(name, probe)),
    ]);
    const worst = components.some((c) => c.state === "down") ? "down" : components.some((c) => c.state === "degraded") ? "degraded" : "ok";
    return { status: worst, checkedAt: new Date().toISOString(), components, networks: [...this.networks.keys()] };
  }

  private async database(): Promise<Component> {
    return timed("postgres", async () => {
      await withTimeout(this.sources.db`select 1`, PROBE_TIMEOUT_MS);
      return { state: "ok" };
    });
  }

  private async nats(): Promise<Component> {
    const nc = this.sources.nats;
    if (!nc) return { name: "nats", state: "not_configured", latencyMs: null };
    if (nc.isClosed()) return { name: "nats", state: "down", latencyMs: null, details: { closed: true } };
    return timed("nats", async () => {
      await withTimeout(nc.rtt(), PROBE_TIMEOUT_MS);
      return { state: "ok" };
    });
  }

  private async cluster(): Promise<Component> {
    const cluster = this.sources.cluster;
    if (!cluster) return { name: "cluster", state: "not_configured", latencyMs: null };
    const health = cluster.health();
    const status = cluster.status();
    return {
      name: "cluster",
      state: !health.ok ? "down" : cluster.settled() ? "ok" : "degraded",
      latencyMs: null,
      details: { shardsHeld: status.shards.length, liveNodes: status.liveNodes.length, settled: cluster.settled() },
    };
  }

  /** The JetStream relay: events committed and not yet published, and how old the oldest is. */
  private async relay(): Promise<Component> {
    if (!this.sources.relay) return { name: "jetstream_relay", state: "not_configured", latencyMs: null };
    return timed("jetstream_relay", async () => {
      const waiting = await withTimeout(backlog(this.sources.db, "relay"), PROBE_TIMEOUT_MS);
      const lagMs = Math.round(waiting.oldestMs ?? 0);
      return { state: lagState(lagMs), details: { backlog: waiting.events, lagMs } };
    });
  }

  /** Work the outbox still asks of the workers: transfer saga steps, card deposit steps, payouts. */
  private async outbox(): Promise<Component> {
    return timed("outbox", async () => {
      const columns = await this.sources.db`select column_name from information_schema.columns where table_name = 'outbox' and column_name in ('payout_pending')`;
      const payouts = columns.length > 0;
      const [row] = await withTimeout(
        this.sources.db`select
          (select count(*) from outbox where saga_pending)::int as saga,
          (select count(*) from outbox where deposit_pending)::int as deposits,
          ${payouts ? this.sources.db`(select count(*) from outbox where payout_pending)::int` : this.sources.db`0`} as payouts,
          (select extract(epoch from now() - min(created_at)) * 1000 from outbox where saga_pending or deposit_pending) as age`,
        PROBE_TIMEOUT_MS,
      );
      const lagMs = row!.age === null ? 0 : Math.max(0, Math.round(Number(row!.age)));
      return { state: lagState(lagMs), details: { sagaPending: row!.saga as number, depositPending: row!.deposits as number, payoutPending: row!.payouts as number, oldestPendingMs: lagMs } };
    });
  }

  private async monitoring(): Promise<Component> {
    const lag = this.sources.monitoringLag;
    if (!lag) return { name: "monitoring", state: "not_configured", latencyMs: null };
    return timed("monitoring", async () => {
      const { events, oldestMs } = await withTimeout(lag(), PROBE_TIMEOUT_MS);
      return { state: lagState(oldestMs ?? 0), details: { behindEvents: events, lagMs: oldestMs ?? 0 } };
    });
  }

  /** Stripe: configured? reachable? One cheap call with a short timeout, its answer kept a few seconds. */
  private async stripe(): Promise<Component> {
    const stripe = this.sources.stripe;
    if (!stripe) return { name: "stripe", state: "not_configured", latencyMs: null };
    if (this.stripeCached && Date.now() - this.stripeCached.at < STRIPE_CACHE_MS) return this.stripeCached.component;
    this.stripeInFlight ??= timed("stripe", async () => {
      await stripe.events.list({ limit: 1 }, { timeout: PROBE_TIMEOUT_MS, maxNetworkRetries: 0 });
      return { state: "ok" };
    }).finally(() => (this.stripeInFlight = undefined));
    const component = await this.stripeInFlight;
    this.stripeCached = { at: Date.now(), component };
    return component;
  }

  private network(name: string, probe: NetworkProbe): Promise<Component> {
    return timed(`network:${name}`, async () => {
      const answer = await withTimeout(probe(), PROBE_TIMEOUT_MS);
      return { state: answer.ok ? "ok" : "down", ...(answer.details ? { details: answer.details } : {}) };
    });
  }
}

function lagState(lagMs: number): ComponentState {
  return lagMs >= LAG_DOWN_MS ? "down" : lagMs >= LAG_DEGRADED_MS ? "degraded" : "ok";
}

/** Runs a check, timing it; a check that throws or times out is `down` (with the kind of failure, never its text). */
async function timed(name: string, check: () => Promise<Omit<Component, "name" | "latencyMs">>): Promise<Component> {
  const started = performance.now();
  try {
    const result = await check();
    return { name, latencyMs: Math.round((performance.now() - started) * 10) / 10, ...result };
  } catch (error) {
    const timedOut = error instanceof ProbeTimeout;
    return { name, state: "down", latencyMs: Math.round((performance.now() - started) * 10) / 10, details: { error: timedOut ? "timeout" : errorKind(error) } };
  }
}

class ProbeTimeout extends Error {}

function withTimeout<T>(work: PromiseLike<T>, ms: number): Promise<T> {
  let timer: Timer | undefined;
  return Promise.race([
    Promise.resolve(work).finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeTimeout()), ms);
    }),
  ]);
}

/** A failure's kind (a class name or a code), never its message: messages can carry hosts and credentials. */
function errorKind(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  const name = (error as { name?: unknown })?.name;
  return typeof name === "string" && /^[A-Za-z0-9_]{1,40}$/.test(name) ? name : "error";
}

/**
 * Whether this node should take traffic (`GET /ready`): the database answers, every migration this
 * node knows is applied, and in a cluster the node is healthy and holds every shard it should.
 */
export async function ready(db: Db, cluster: Cluster | undefined, migrations: readonly string[]): Promise<boolean> {
  try {
    if (cluster && (!cluster.health().ok || !cluster.settled())) return false;
    const [row] = await withTimeout(db`select count(*)::int as n from schema_migrations where name in ${db(migrations as string[])}`, PROBE_TIMEOUT_MS);
    return row!.n === migrations.length;
  } catch {
    return false;
  }
}
