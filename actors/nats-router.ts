import type { NatsConnection } from "@nats-io/transport-node";
import { refusal } from "../lib/errors";
import { Gate } from "../lib/gate";
import type { BusGuard } from "./bus/guard";
import { decode } from "./codec";
import type { Envelope, Reply } from "./envelope";
import { assertSameKind, type Aggregate, type Router } from "./router";
import { shardOf } from "./shards";

/**
 * Commands over NATS: a command for wallet W goes to `<prefix>.wallet.<shard>.<W>`, one for chama C
 * to `<prefix>.chama.<shard>.<C>`, where only the node holding that shard's lease listens. While a shard changes hands nobody answers for
 * a moment; the request is sent again (same envelope, same idempotency key, so at most one effect)
 * until an owner answers or the deadline passes (503, retry later).
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
}

export class NatsRouter implements Router {
  /** Bounds the commands this node forwards at once, so a flood waits in a bounded line or is refused. */
  readonly gate: Gate;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bus: BusGuard,
    private readonly options: NatsRouterOptions,
  ) {
    this.gate = new Gate({ inFlightMax: options.inFlightMax, waitingMax: options.waitingMax });
  }

  send(to: Aggregate, envelope: Envelope): Promise<Reply> {
    assertSameKind(to, envelope);
    return this.gate.run(() => this.forward(to, envelope), () => refusal("OVERLOADED", "this node is forwarding too many commands; retry with the same idempotency key"));
  }

  private async forward(to: Aggregate, envelope: Envelope): Promise<Reply> {
    const subject = `${this.options.prefix}.${to.kind}.${shardOf(to.id, this.options.shardCount)}.${to.id}`;
    const deadline = Date.now() + this.options.deadlineMs;
    for (let attempt = 0; ; attempt++) {
      try {
        // Signed afresh each attempt (a new nonce and time): the receiving node takes each message once.
        const { payload, nonce } = this.bus.sealCommand(subject, envelope);
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
