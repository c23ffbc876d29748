import { NoRespondersError, RequestError, type NatsConnection } from "@nats-io/transport-node";
import { refusal } from "../lib/errors";
import { Gate } from "../lib/gate";
import type { BusGuard } from "./bus/guard";
import { decode } from "./codec";
import type { Envelope, Reply } from "./envelope";
import { BATCH_BODY_MAX_BYTES, BATCH_COMMANDS_LIMIT, batchSubject, decodeBatchReply, encodeBatch, itemBytes } from "./forwarding";
import { assertSameKind, ownerHints, type Aggregate, type OwnerHints, type Router } from "./router";
import { shardOf } from "./shards";

/**
 * Commands over NATS: a command for wallet W goes to `<prefix>.wallet.<shard>.<W>`, one for chama C
 * to `<prefix>.chama.<shard>.<C>`, where only the node holding that shard's lease listens. While a shard changes hands nobody answers for
 * a moment; the request is sent again (same envelope, same idempotency key, so at most one effect)
 * until an owner answers or the deadline passes (503, retry later).
 *
 * In a cluster (`useCluster`), two short cuts: a command for a shard this node holds runs here, with
 * no NATS at all; and commands for the shards another node should own go to that node together,
 * many in one message (actors/forwarding.ts): while a node's batches are in flight, what arrives for
 * it waits and leaves in the next one. A command the batch did not answer (the node does not hold
 * its shard after all, its guard dropped it, or the batch got no answer) is sent again alone on its
 * shard's subject, which reaches whoever holds the lease: re-resolved once, never forwarded twice.
 */
export interface NatsRouterOptions {
  prefix: string;
  shardCount: number;
  /** How long one attempt waits for the owner's answer. */
  requestTimeoutMs: number;
  /** How long to keep trying while no node owns the shard (about a lease's life and a bit). */
  deadlineMs: number;
  /** Commands being forwarded at once at most (each until its answer or its deadline). */
  inFlightMax: number;
  /** Commands waiting for a slot at most; one more is answered 503 OVERLOADED at once. */
  waitingMax: number;
  /** Commands in one batch at most (default 256). */
  batchMax?: number;
  /** Bytes of commands in one batch at most (default and ceiling: what one bus message may carry). */
  batchBytesMax?: number;
  /** Batches on their way to one node at once (default 2); what arrives meanwhile waits for the next. */
  batchesInFlightMax?: number;
}

/** What the router asks of the cluster for its short cuts (actors/cluster.ts). */
export interface ShardOwners {
  readonly nodeId: string;
  /** This node holds the shard's lease now. */
  holds(shard: number): boolean;
  /** The node that should own the shard among the live nodes (it may not hold the lease yet). */
  ownerOf(shard: number): string | undefined;
  /** Runs a command on this node's actors (for a shard `holds` said is held). */
  dispatch(id: string, envelope: Envelope): Promise<Reply>;
}

/** One command waiting for a batch to carry it. */
interface Waiting {
  to: Aggregate;
  subject: string;
  envelope: Envelope;
  hints: OwnerHints | undefined;
  /** The batch's outcome for it, or undefined when the batch did not answer it. */
  done: (reply: Reply | undefined) => void;
}

/** The commands bound for one node. */
interface Lane {
  nodeId: string;
  waiting: Waiting[];
  inFlight: number;
  scheduled: boolean;
}

const DEFAULT_BATCH_MAX = 256;
const DEFAULT_BATCHES_IN_FLIGHT_MAX = 2;
/** A node that has nobody on its batch subject (older code) gets single commands for this long. */
const NO_BATCHES_BACKOFF_MS = 30_000;

export class NatsRouter implements Router {
  /** Bounds the commands this node forwards at once, so a flood waits in a bounded line or is refused. */
  readonly gate: Gate;
  /** Messages sent since start: batches (with how many commands they carried) and single commands. */
  readonly sent = { batches: 0, batchedCommands: 0, singles: 0, local: 0 };
  private owners: ShardOwners | undefined;
  private readonly lanes = new Map<string, Lane>();
  private readonly noBatchesUntil = new Map<string, number>();
  private readonly batchMax: number;
  private readonly batchBytesMax: number;
  private readonly batchesInFlightMax: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bus: BusGuard,
    private readonly options: NatsRouterOptions,
  ) {
    this.gate = new Gate({ inFlightMax: options.inFlightMax, waitingMax: options.waitingMax });
    this.batchMax = Math.min(Math.max(1, options.batchMax ?? DEFAULT_BATCH_MAX), BATCH_COMMANDS_LIMIT);
    this.batchBytesMax = Math.min(Math.max(1_024, options.batchBytesMax ?? BATCH_BODY_MAX_BYTES), BATCH_BODY_MAX_BYTES);
    this.batchesInFlightMax = Math.max(1, options.batchesInFlightMax ?? DEFAULT_BATCHES_IN_FLIGHT_MAX);
  }

  /** Turn on the short cuts: run here what this node holds, batch what goes to one other node. */
  useCluster(owners: ShardOwners): void {
    this.owners = owners;
  }

  send(to: Aggregate, envelope: Envelope): Promise<Reply> {
    assertSameKind(to, envelope);
    // Taken now, in the caller's context: the batch that carries the command runs in its own.
    const hints = ownerHints.getStore();
    return this.gate.run(() => this.route(to, envelope, hints), () => refusal("OVERLOADED", "this node is forwarding too many commands; retry with the same idempotency key"));
  }

  private async route(to: Aggregate, envelope: Envelope, hints: OwnerHints | undefined): Promise<Reply> {
    const shard = shardOf(to.id, this.options.shardCount);
    const subject = `${this.options.prefix}.${to.kind}.${shard}.${to.id}`;
    const deadline = Date.now() + this.options.deadlineMs;
    const owners = this.owners;
    if (owners) {
      if (owners.holds(shard)) {
        this.sent.local++;
        return owners.dispatch(to.id, envelope);
      }
      const nodeId = owners.ownerOf(shard);
      if (nodeId !== undefined && nodeId !== owners.nodeId && !((this.noBatchesUntil.get(nodeId) ?? 0) > Date.now())) {
        const reply = await this.viaBatch(nodeId, { to, subject, envelope, hints });
        if (reply) return reply;
      }
    }
    return this.forward(to, subject, envelope, deadline);
  }

  /** The outcome from a batch to `nodeId`, or undefined when the batch did not answer the command. */
  private viaBatch(nodeId: string, command: Omit<Waiting, "done">): Promise<Reply | undefined> {
    let lane = this.lanes.get(nodeId);
    if (!lane) {
      lane = { nodeId, waiting: [], inFlight: 0, scheduled: false };
      this.lanes.set(nodeId, lane);
    }
    const { promise, resolve } = Promise.withResolvers<Reply | undefined>();
    // Bounded by the gate: a command waits here only while it holds one of its inFlightMax slots.
    lane.waiting.push({ ...command, done: resolve });
    this.schedule(lane);
    return promise;
  }

  /** Send what waits once the current piece of work is over, so commands given together leave together. */
  private schedule(lane: Lane): void {
    if (lane.scheduled || lane.inFlight >= this.batchesInFlightMax) return;
    lane.scheduled = true;
    queueMicrotask(() => {
      lane.scheduled = false;
      this.pump(lane);
    });
  }

  private pump(lane: Lane): void {
    while (lane.inFlight < this.batchesInFlightMax && lane.waiting.length) {
      const items: Waiting[] = [];
      const sealed: [string, string][] = [];
      let bytes = 0;
      while (lane.waiting.length && items.length < this.batchMax) {
        const next = lane.waiting[0]!;
        // Signed now, not when it was given: a command that waited is still fresh when it arrives.
        const { payload } = this.bus.sealCommand(next.subject, next.envelope);
        const cost = itemBytes(next.subject, payload);
        if (items.length && bytes + cost > this.batchBytesMax) break;
        lane.waiting.shift();
        items.push(next);
        sealed.push([next.subject, payload]);
        bytes += cost;
      }
      lane.inFlight++;
      void this.sendBatch(lane.nodeId, items, sealed).finally(() => {
        lane.inFlight--;
        if (lane.waiting.length) this.schedule(lane);
        else if (!lane.inFlight) this.lanes.delete(lane.nodeId);
      });
    }
  }

  private async sendBatch(nodeId: string, items: Waiting[], sealed: [string, string][]): Promise<void> {
    const subject = batchSubject(this.options.prefix, nodeId);
    const answered = new Set<number>();
    try {
      const { payload, nonce } = this.bus.seal(subject, encodeBatch(sealed));
      this.sent.batches++;
      this.sent.batchedCommands += items.length;
      const msg = await this.nc.request(subject, payload, { timeout: this.options.requestTimeoutMs });
      const body = this.bus.openReply(nonce, msg.data, subject);
      const reply = body === undefined ? undefined : decodeBatchReply(body, items.length);
      if (!reply) return;
      for (const [i, answer] of reply.answers.entries()) {
        if (typeof answer === "number") continue;
        const item = items[i]!;
        if (reply.publicUrl) item.hints?.record(item.to.id, reply.publicUrl);
        answered.add(i);
        item.done(answer);
      }
    } catch (error) {
      // Nobody listens on the node's batch subject (it runs older code, or it just died): send it
      // single commands for a while.
      if (isNoResponders(error)) {
        const now = Date.now();
        for (const [node, until] of this.noBatchesUntil) if (until <= now) this.noBatchesUntil.delete(node);
        this.noBatchesUntil.set(nodeId, now + NO_BATCHES_BACKOFF_MS);
      }
    } finally {
      // Whatever the batch did not answer goes again alone (same envelope, same idempotency key).
      for (const [i, item] of items.entries()) if (!answered.has(i)) item.done(undefined);
    }
  }

  private async forward(to: Aggregate, subject: string, envelope: Envelope, deadline: number): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      try {
        // Signed afresh each attempt (a new nonce and time): the receiving node takes each message once.
        const { payload, nonce } = this.bus.sealCommand(subject, envelope);
        this.sent.singles++;
        const reply = await this.nc.request(subject, payload, { timeout: this.options.requestTimeoutMs });
        // An answer no node signed for this request is no answer: ask again.
        const body = this.bus.openReply(nonce, reply.data, subject);
        if (body !== undefined) return decode<Reply>(body);
      } catch {
        // No responders (nobody owns the shard yet) or no answer in time (the owner died): ask again.
      }
      if (Date.now() >= deadline) break;
      await Bun.sleep(Math.min(50 * 2 ** attempt, 500));
    }
    return refusal("UNAVAILABLE", `no node answers for this ${to.kind} right now; retry with the same idempotency key`);
  }
}

function isNoResponders(error: unknown): boolean {
  return error instanceof NoRespondersError || (error instanceof RequestError && error.isNoResponders());
}
