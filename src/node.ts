import { ActorHost } from "../actors/host";
import { chamaKind } from "../actors/chama-kind";
import { CommitQueue, connectCommitLane } from "../actors/commit-queue";
import { walletKind } from "../actors/wallet-kind";
import { depositKind } from "../actors/deposit-kind";
import { needsWalletStep } from "../actors/deposit-store";
import { DepositService } from "./api/deposit-service";
import { renderDepositOutcome } from "./api/deposit-views";
import { stripeSettingsOf } from "./integrations/stripe/client";
import { registerDepositHandlers } from "./integrations/stripe/deposit-events";
import { StripeRail } from "./integrations/stripe/rail";
import { DepositSaga } from "./workers/deposit-saga";
import { PayoutWorker } from "./workers/payout-worker";
import { registerPayoutHandlers } from "./integrations/stripe/payout-events";
import { needsChainPayout, needsPayout } from "../actors/wallet-store";
import { evmNetworks, loadNetworks, solanaNetworks } from "./integrations/chain/config";
import { SolanaPayouts } from "./integrations/solana/payouts";
import { ChainLimits } from "./integrations/chain/limits";
import { ChainWorkQueue } from "./integrations/chain/work-queue";
import { EvmPayouts } from "./integrations/evm/payouts";
import type { Networks } from "./integrations/chain/config";
import { ChamaService } from "./api/chama-service";
import { renderChamaOutcome } from "./api/chama-views";
import { ChamaExpiry } from "./workers/chama-expiry";
import { Cluster } from "../actors/cluster";
import { BusGuard } from "../actors/bus/guard";
import { BusKeys, ensureBusKeyFile } from "../actors/bus/keys";
import { NatsRouter } from "../actors/nats-router";
import { InProcessRouter } from "../actors/router";
import { WalletService } from "./api/wallet-service";
import { renderWalletOutcome } from "./api/views";
import type { Config } from "./config";
import { connect, type Db } from "../lib/db";
import { isAsset } from "../lib/assets";
import { maxMinorFor } from "../lib/money";
import { migrate } from "./db/migrate";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { startNatsApi } from "./nats/api";
import { natsAuthShown, natsConnectOptions, natsServersShown } from "./nats/connect";
import { log } from "../lib/log";
import { ApiKeys } from "./security/api-keys";
import { ensureVaultFile, Vault } from "./security/encryption";
import { Authenticator } from "./security/authenticator";
import { RateLimiter } from "./security/rate-limit";
import { loadKeyRing } from "./security/keys";
import { buildHttpApp } from "./http/app";
import { MonitoringWorker } from "./monitoring/worker";
import { DEFAULT_RULES, RuleBook, rulesFromFile } from "./monitoring/rules";
import { HealthChecks } from "./admin/health";
import type { AdminServices } from "./admin/services";
import { CofferMetrics, countAlert, countWebhookDeliveryOut } from "./monitoring/metrics";
import { WebhookEndpoints } from "./webhooks/endpoints";
import { webhookSettingsOf } from "./webhooks/settings";
import { WebhookDelivery } from "./workers/webhook-delivery";
import { startIdempotencyExpiry } from "./workers/idempotency-expiry";
import { OutboxRelay } from "./workers/outbox-relay";
import { TransferSaga } from "./workers/transfer-saga";
import { EVERYTHING, SINGLETONS, type Ownership, type Singleton } from "./workers/ownership";
import { Kicks } from "./workers/kicks";

/** One Coffer node, wired: database, actor host, router, operations, saga worker, HTTP app. */
export interface Node {
  db: Db;
  host: ActorHost;
  ops: WalletService;
  chamas: ChamaService;
  /** Card deposits, refunds and disputes through Stripe. */
  deposits: DepositService;
  /** Moves card money between Stripe's system accounts and wallets (credits, refunds, disputes). */
  depositSaga: DepositSaga;
  /** Present when Stripe is configured: the SDK client, the webhook intake, event handlers (`stripe.dispatcher.register`) and their worker. */
  stripe: StripeRail | undefined;
  /** Present when Stripe is configured: pays withdrawals to `bank_token` / `stripe_account` destinations through Stripe. */
  payouts: PayoutWorker | undefined;
  /** Present when NETWORKS_FILE names networks: pays ETH withdrawals on them from their hot wallets (src/integrations/evm/payouts.ts). */
  chainPayouts: EvmPayouts | undefined;
  /** Present when NETWORKS_FILE names Solana networks: pays SOL withdrawals on them (src/integrations/solana/payouts.ts). */
  solanaPayouts: SolanaPayouts | undefined;
  /** The networks of NETWORKS_FILE as parsed at start (the operator routes, src/api/operations/chain.ts, read them). */
  networks: Networks;
  /** Seals sensitive fields at rest (destinations, stored secrets). */
  vault: Vault;
  saga: TransferSaga;
  chamaExpiry: ChamaExpiry;
  /** Present when NATS_URL is set: publishes the outbox to JetStream. */
  relay: OutboxRelay | undefined;
  /** Webhooks out: apps' endpoints (`webhooks`) and the worker that delivers events to them. */
  webhooks: WebhookEndpoints;
  webhookDelivery: WebhookDelivery;
  /** Present when NATS_URL is set: this node's shard leases. */
  cluster: Cluster | undefined;
  /** Present when NATS_URL is set: the node's NATS connection. */
  nats: NatsConnection | undefined;
  http: ReturnType<typeof buildHttpApp>;
  /** This node's Prometheus registry and recorders (served by `startMetricsServer`, src/monitoring/metrics.ts). */
  metrics: CofferMetrics;
  /** Transaction monitoring (src/monitoring/): runs in the background with MONITORING=on; `settle()` runs it by hand. */
  monitoring: MonitoringWorker;
  /** The rules monitoring evaluates, and the health checks of GET /admin/health. */
  admin: AdminServices;
  close(): Promise<void>;
}

export interface NodeOptions {
  /** The node's clock for chama commands and their expiry, and for Lightning invoices' expiry (tests move it instead of sleeping). */
  now?: () => Date;
  /** How often the chama expiry worker looks for overdue requests (tests that move the clock call runOnce instead). */
  chamaExpiryPollMs?: number;
}

export async function startNode(config: Config, databaseUrl: string, options: NodeOptions = {}): Promise<Node> {
  // The commit lanes' connections are part of DB_POOL_MAX (actors/commit-queue.ts).
  const db = connect(databaseUrl, Math.max(2, config.DB_POOL_MAX - config.COMMIT_LANES));
  await migrate(db);
  // Made first so every part of the node can count into it (countAlert, countWebhookDeliveryOut, …).
  const metrics = new CofferMetrics();
  let saga: TransferSaga | undefined;
  let relay: OutboxRelay | undefined;
  let depositSaga: DepositSaga | undefined;
  let payouts: PayoutWorker | undefined;
  let monitoring: MonitoringWorker | undefined;
  let chainPayouts: EvmPayouts | undefined;
  let solanaPayouts: SolanaPayouts | undefined;
  // With NATS, a singleton job another node holds is woken there (src/workers/kicks.ts); without, here.
  let kicks: Kicks | undefined;
  let stripeEvents: { kick(): void } | undefined;
  const wakeHere = (job: Singleton): void => {
    if (job === "outbox-relay") relay?.kick();
    else if (job === "monitoring") monitoring?.kick();
    else if (job === "chain-sweep-evm") chainPayouts?.kick();
    else if (job === "chain-sweep-solana") solanaPayouts?.kick();
    else if (job === "stripe-events") stripeEvents?.kick();
  };
  const wake = (job: Singleton): void => (kicks ? kicks.kick(job) : wakeHere(job));
  const commits = new CommitQueue(
    db,
    { inFlightMax: config.COMMIT_IN_FLIGHT_MAX, writesMax: config.COMMIT_WALLETS_MAX, waitingMax: config.COMMIT_WAITING_MAX, lanes: config.COMMIT_LANES, depth: config.COMMIT_PIPELINE_DEPTH },
    undefined,
    () => connectCommitLane(databaseUrl),
  );
  // The machines refuse amounts over the configured maximum themselves, whatever path a command took.
  const ceiling = (asset: string) => (isAsset(asset) ? maxMinorFor(config.maxAmountMajor, asset) : 0n);
  const wallets = walletKind(commits, renderWalletOutcome, ceiling, (effects) => {
    if (effects.some((e) => e.type === "transfer.reserved" || e.type === "transfer.credited")) saga?.kick();
    if (effects.some(needsPayout)) payouts?.kick();
    if (effects.some(needsChainPayout)) {
      wake("chain-sweep-evm");
      wake("chain-sweep-solana");
    }
    wake("outbox-relay");
    wake("monitoring");
  });
  const chamaActors = chamaKind(commits, renderChamaOutcome, ceiling, (effects) => {
    // A contribution that arrived, or a withdrawal into a wallet that started: the saga's next step.
    if (effects.some((e) => e.type === "chama.transfer.credited" || (e.type === "chama.withdrawal.changed" && e.toWalletId !== undefined))) saga?.kick();
    wake("outbox-relay");
    wake("monitoring");
  });
  const depositActors = depositKind(commits, renderDepositOutcome, ceiling, (effects) => {
    if (effects.some(needsWalletStep)) depositSaga?.kick();
    wake("outbox-relay");
    wake("monitoring");
  });
  const host = new ActorHost(db, { wallet: wallets, chama: chamaActors, deposit: depositActors }, commits, {
    batchMax: config.ACTOR_BATCH_MAX,
    mailboxMax: config.ACTOR_MAILBOX_MAX,
    recentMax: 1024,
    // Chained batches pay off only pipelined on a lane; on the pool each would wait for the one before.
    chainMax: config.COMMIT_LANES > 0 ? config.ACTOR_CHAIN_MAX : 1,
    idleMs: config.ACTOR_IDLE_MS,
    hibernateMs: config.ACTOR_HIBERNATE_MS,
    staleRetries: 3,
    actorsMax: config.ACTORS_MAX,
  });
  await ensureVaultFile(config.vaultFile);
  // With NATS, wallet commands travel to whichever node holds the wallet's shard; without, they
  // stay in this process.
  // Reconnect for ever: a NATS restart must not take the node down with it.
  const nats = config.NATS_URL
    ? await connectNats(await natsConnectOptions(config))
    : undefined;
  if (nats && config.NATS_URL) {
    // Where the node is connected and how it authenticated, never with what (no user, no secret).
    log("info", "NATS connected", { servers: natsServersShown(config.NATS_URL), connectedTo: nats.getServer(), auth: natsAuthShown(config), prefix: config.NATS_SUBJECT_PREFIX });
  }
  // Nodes sign what they send each other and check everything they receive (actors/bus/).
  await ensureBusKeyFile(config.clusterKeysFile);
  const bus = nats ? new BusGuard(await BusKeys.load(config.clusterKeysFile), { maxAgeMs: config.BUS_MAX_AGE_MS, shardCount: config.SHARDS }) : undefined;
  const router = nats && bus
    ? new NatsRouter(nats, bus, { prefix: config.NATS_SUBJECT_PREFIX, shardCount: config.SHARDS, requestTimeoutMs: 2_000, deadlineMs: config.LEASE_TTL_MS * 3, inFlightMax: config.NATS_IN_FLIGHT_MAX, waitingMax: config.NATS_WAITING_MAX })
    : new InProcessRouter(host);
  // Who does which background work (src/workers/ownership.ts): with NATS, the shards and singleton
  // leases this node holds (nothing until the cluster's first round); without, all of it.
  let leases: Cluster | undefined;
  const ownership: Ownership = nats
    ? { shardCount: config.SHARDS, shards: () => leases?.heldShards() ?? [], leads: (name) => leases?.leads(name) ?? false }
    : EVERYTHING;
  const vault = await Vault.load(config.vaultFile);
  const ops = new WalletService(db, router, config.maxAmountMajor, vault, { now: options.now ?? (() => new Date()), lightningNetwork: config.LIGHTNING_NETWORK });
  const chamas = new ChamaService(db, router, config.maxAmountMajor, vault, options.now, config.LIGHTNING_NETWORK);
  const chamaExpiry = new ChamaExpiry(db, chamas, options.chamaExpiryPollMs, undefined, ownership);
  // Stripe, when configured: deposits, refunds and disputes (their saga resumes whatever a previous
  // run left in flight), and the webhook's events.
  const stripeSettings = stripeSettingsOf(config);
  const stripe = stripeSettings ? new StripeRail(db, stripeSettings, ownership, () => wake("stripe-events")) : undefined;
  stripeEvents = stripe?.events;
  const deposits = new DepositService(db, router, ops, vault, config.maxAmountMajor, stripe?.client);
  depositSaga = new DepositSaga(db, ops, deposits, stripe?.client, undefined, ownership);
  deposits.useSaga(depositSaga);
  if (stripe) registerDepositHandlers(stripe.dispatcher, deposits, ops, stripe.client);
  // Bank payouts: withdrawals to destinations Stripe holds are paid by the payout worker (which
  // resumes whatever a previous run left in flight), ended by Stripe's payout events.
  if (stripe) {
    payouts = new PayoutWorker(db, ops, vault, stripe.client, undefined, config.MONITORING === "on", ownership);
    ops.useStripePayouts();
    registerPayoutHandlers(stripe.dispatcher, db, payouts);
    payouts.kick();
  }
  // Chain payouts (first slice: native ETH on the EVM networks of NETWORKS_FILE).
  const networks = await loadNetworks(config.NETWORKS_FILE);
  const chainLimits = new ChainLimits(db, networks);
  ops.useChainLimits(chainLimits);
  chainPayouts = Object.keys(evmNetworks(networks)).length
    ? new EvmPayouts(db, ops, vault, evmNetworks(networks), undefined, config.MONITORING === "on", {
        holder: config.NODE_ID ?? "local",
        limits: chainLimits,
        // With NATS, work between stages travels on a JetStream work queue all nodes share.
        ...(nats ? { queue: new ChainWorkQueue(nats, config.NATS_SUBJECT_PREFIX, "evm"), sweeps: () => ownership.leads("chain-sweep-evm") } : {}),
      })
    : undefined;
  await chainPayouts?.start();
  chainPayouts?.kick();
  solanaPayouts = Object.keys(solanaNetworks(networks)).length
    ? new SolanaPayouts(db, ops, vault, solanaNetworks(networks), undefined, config.MONITORING === "on", {
        limits: chainLimits,
        ...(nats ? { queue: new ChainWorkQueue(nats, config.NATS_SUBJECT_PREFIX, "solana"), sweeps: () => ownership.leads("chain-sweep-solana") } : {}),
      })
    : undefined;
  await solanaPayouts?.start();
  solanaPayouts?.kick();
  depositSaga.kick();
  stripe?.events.kick();
  saga = new TransferSaga(db, ops, chamas, undefined, ownership);
  saga.kick(); // resume transfers a previous run left in flight
  const stopExpiry = startIdempotencyExpiry(db, config.IDEMPOTENCY_TTL_HOURS, undefined, ownership);
  const apiKeys = new ApiKeys(db);
  const authenticator = new Authenticator(await loadKeyRing(config.keysFile), { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE }, apiKeys);
  const limiter = config.RATE_LIMITS === "on" ? new RateLimiter(db) : undefined;
  if (limiter) limiter.onRefused = (tier) => metrics.rateLimited(tier);
  const cluster = nats && bus
    ? new Cluster(nats, host, bus, { nodeId: config.NODE_ID ?? Bun.randomUUIDv7(), prefix: config.NATS_SUBJECT_PREFIX, shardCount: config.SHARDS, leaseTtlMs: config.LEASE_TTL_MS, inFlightMax: config.NATS_IN_FLIGHT_MAX, waitingMax: config.NATS_WAITING_MAX, publicUrl: config.PUBLIC_URL, singletons: SINGLETONS })
    : undefined;
  leases = cluster;
  // In a cluster, commands for shards this node holds run here, and those for another node travel to it many to a message.
  if (cluster && router instanceof NatsRouter) {
    router.useCluster(cluster.shardOwners());
    cluster.forwarded = () => router.sent;
  }
  metrics.watch({ db, host, healthy: () => cluster?.health().ok ?? true });
  // Transaction monitoring reads the committed events after their commit (never in a payment's path);
  // its rules come from MONITORING_RULES_FILE or the defaults until an admin changes them.
  const ruleBook = config.MONITORING_RULES_FILE ? new RuleBook(db, await rulesFromFile(config.MONITORING_RULES_FILE), "file") : new RuleBook(db, DEFAULT_RULES, "default");
  monitoring = new MonitoringWorker(db, ruleBook, vault, ops, chamas, { onAlert: (severity) => countAlert(metrics, severity), ownership });
  const watcher = monitoring;
  const health = new HealthChecks({ db, nats, cluster, stripe: stripe?.client, relay: nats !== undefined, monitoringLag: () => watcher.lag() });
  const admin: AdminServices = { rules: ruleBook, monitoring, health };
  // Webhooks out: endpoints apps register, and the worker that sends them the outbox's events.
  const webhookSettings = webhookSettingsOf(config);
  const webhooks = new WebhookEndpoints(db, vault, webhookSettings);
  const webhookDelivery = new WebhookDelivery(db, vault, webhookSettings, { onOutcome: (outcome) => countWebhookDeliveryOut(metrics, outcome), ownership });
  webhooks.onChange = () => (kicks ? kicks.kick("webhook-delivery") : webhookDelivery.kick());
  webhookDelivery.kick();
  // The chain operator routes: the networks, and the payout workers woken after an operator's change.
  const chain = { networks, kick: () => {
    wake("chain-sweep-evm");
    wake("chain-sweep-solana");
  } };
  const http = buildHttpApp({ db, ops, chamas, deposits, stripe, host, cluster, authenticator, apiKeys, vault, limiter, config, corsOrigins: config.corsOrigins, metrics, webhooks, admin, chain });
  if (nats) cluster?.watch("api", startNatsApi(nats, config.NATS_SUBJECT_PREFIX, { db, ops, chamas, deposits, stripe, apiKeys, vault, host, cluster, authenticator, limiter, limits: config, metrics, webhooks, admin, chain }));
  relay = nats ? new OutboxRelay(db, nats, config.NATS_SUBJECT_PREFIX, undefined, ownership) : undefined;
  // A shard or a job this node just took (a node joined, left or died): its work is looked at now.
  cluster?.onGain(() => {
    saga?.kick();
    depositSaga?.kick();
    payouts?.kick();
    chainPayouts?.kick();
    solanaPayouts?.kick();
    relay?.kick();
    webhookDelivery.kick();
    monitoring?.kick();
    chamaExpiry.kick();
    stripe?.events.kick();
  });
  if (nats && bus) {
    kicks = new Kicks(nats, bus, config.NATS_SUBJECT_PREFIX, ownership);
    for (const job of ["outbox-relay", "monitoring", "chain-sweep-evm", "chain-sweep-solana", "stripe-events"] as const) kicks.handle(job, () => wakeHere(job));
    kicks.handle("webhook-delivery", () => webhookDelivery.kick()).handle("chama-expiry", () => chamaExpiry.kick()).start();
  }
  await relay?.start();
  await cluster?.start();
  if (config.MONITORING === "on") monitoring.start();
  return {
    db,
    host,
    ops,
    chamas,
    deposits,
    depositSaga,
    stripe,
    payouts,
    chainPayouts,
    solanaPayouts,
    networks,
    vault,
    saga,
    chamaExpiry,
    relay,
    webhooks,
    webhookDelivery,
    cluster,
    nats,
    http,
    metrics,
    monitoring,
    admin,
    async close() {
      await stopExpiry();
      await chamaExpiry.stop();
      await watcher.stop();
      await cluster?.stop();
      kicks?.stop();
      await relay?.stop();
      await webhookDelivery.stop();
      await nats?.drain();
      await saga!.stop();
      await stripe?.stop();
      await payouts?.stop();
      await chainPayouts?.stop();
      await solanaPayouts?.stop();
      await depositSaga!.stop();
      await host.stop();
      await commits.close();
      metrics.close();
      await db.end({ timeout: 5 });
    },
  };
}
