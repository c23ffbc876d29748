import { AckPolicy, DiscardPolicy, RetentionPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { log, reason } from "../../../lib/log";

/**
 * The chain payouts' work queue on JetStream (when the node has NATS_URL): a stream with work-queue
 * retention, `<prefix>.chain.work.<kind>.<network>.<stage>`, one message per (payout, status)
 * carrying the withdrawal id and that status, and per kind of chain (`evm`, `solana`) one durable
 * pull consumer all nodes share, with explicit acks. The
 * `chain_payouts` row stays the truth; the queue carries work between stages and spreads it over
 * the nodes:
 *
 * - the workers' sweep (every pass) publishes a message for each payout that has work, its
 *   `Nats-Msg-Id` naming the payout, its status and its attempts, so a payout waiting in a stage is
 *   queued once however often it is swept;
 * - a node takes a message, runs that payout's stages, and acks it once the payout has left the
 *   status the message was for (the sweep queues the next one; a kick runs the sweep at once); a
 *   payout still in it (waiting for confirmations, a paused network, another node's signer lease) is
 *   nak'd with a delay and comes back; a node that dies holding a message has it redelivered after
 *   `ackWaitMs`.
 *
 * Retries and dead letters stay the worker's (`stage_failures`, `chain_dlq`): a stage that keeps
 * failing parks its payout, and its message is then acked, so nothing loops on the queue forever.
 */
export type WorkOutcome = "done" | "wait" | "retry";

export interface WorkQueueOptions {
  /** A node that took a message and said nothing for this long has it given to another. */
  ackWaitMs?: number;
  /** Messages a node works on at once. */
  inFlightMax?: number;
  /** When a payout that waits is looked at again. */
  waitDelayMs?: number;
  /** When a payout whose stage failed is tried again (the worker's own backoff decides further). */
  retryDelayMs?: number;
  /** Most messages the stream keeps (payouts with work); past it publishing is refused and the sweep tries later. */
  maxMessages?: number;
}

const DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000; // 2 minutes
const PULL_EXPIRES_MS = 5_000;

export class ChainWorkQueue {
  private js: JetStreamClient | undefined;
  private messages: ConsumerMessages | undefined;
  private running: Promise<void> | undefined;
  private readonly options: Required<WorkQueueOptions>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly kind: "evm" | "solana",
    options: WorkQueueOptions = {},
  ) {
    this.options = { ackWaitMs: 30_000, inFlightMax: 8, waitDelayMs: 2_000, retryDelayMs: 5_000, maxMessages: 100_000, ...options };
  }

  get stream(): string {
    return `${this.prefix.toUpperCase().replaceAll("-", "_")}_CHAIN_WORK`;
  }

  get consumerName(): string {
    return `chain-workers-${this.kind}`;
  }

  /** Creates the stream and the shared consumer if they are missing. */
  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    await jsm.streams.info(this.stream).catch(() =>
      jsm.streams.add({
        name: this.stream,
        subjects: [`${this.prefix}.chain.work.>`],
        retention: RetentionPolicy.Workqueue,
        discard: DiscardPolicy.New,
        max_msgs: this.options.maxMessages,
        duplicate_window: DUPLICATE_WINDOW_NS,
      }),
    );
    await jsm.consumers.info(this.stream, this.consumerName).catch(() =>
      jsm.consumers.add(this.stream, {
        durable_name: this.consumerName,
        filter_subject: `${this.prefix}.chain.work.${this.kind}.>`,
        ack_policy: AckPolicy.Explicit,
        ack_wait: this.options.ackWaitMs * 1_000_000,
        max_ack_pending: 1_000,
      }),
    );
    this.js = jetstream(this.nc);
  }

  /** Queues work for a payout in `status` (once per `dedupeId` within two minutes). */
  async enqueue(network: string, stage: string, withdrawalId: string, status: string, dedupeId: string): Promise<void> {
    if (!this.js) throw new Error("chain work queue not started");
    await this.js.publish(`${this.prefix}.chain.work.${this.kind}.${network}.${stage}`, `${withdrawalId} ${status}`, { msgID: dedupeId });
  }

  /** Takes messages until `stop()`, at most `inFlightMax` at once, each handled by `work(withdrawalId, status)`. */
  consume(work: (withdrawalId: string, status: string) => Promise<WorkOutcome>): void {
    if (!this.js || this.running) return;
    const js = this.js;
    this.running = (async () => {
      const consumer = await js.consumers.get(this.stream, this.consumerName);
      // Short pull requests: one left on the server by a node that died (or stopped) may take
      // redelivered messages until it expires, so a dead node delays work by at most this long.
      this.messages = await consumer.consume({ max_messages: this.options.inFlightMax, expires: PULL_EXPIRES_MS });
      const inFlight = new Set<Promise<void>>();
      for await (const m of this.messages) {
        const [id = "", status = ""] = m.string().split(" ");
        const handled = work(id, status)
          .then((outcome) => {
            if (outcome === "done") m.ack();
            else m.nak(outcome === "wait" ? this.options.waitDelayMs : this.options.retryDelayMs);
          })
          .catch((error: unknown) => {
            log("warn", "chain work item failed; it comes back", { withdrawalId: id, error: reason(error) });
            m.nak(this.options.retryDelayMs);
          });
        const tracked = handled.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        if (inFlight.size >= this.options.inFlightMax) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    })().catch((error: unknown) => log("error", "chain work queue consumer stopped", { error: reason(error) }));
  }

  /** Messages waiting or being worked on (for GET /admin/networks and tests). */
  async depth(): Promise<{ waiting: number; inFlight: number }> {
    const jsm = await jetstreamManager(this.nc);
    const info = await jsm.consumers.info(this.stream, this.consumerName);
    return { waiting: info.num_pending, inFlight: info.num_ack_pending };
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.running;
    this.running = undefined;
    this.messages = undefined;
  }
}
