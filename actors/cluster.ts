import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { log, reason } from "../lib/log";
import { refusal } from "../lib/errors";
import { Gate } from "../lib/gate";
import type { BusGuard } from "./bus/guard";
import type { Reply } from "./envelope";
import type { ActorKindName } from "./envelope";
import type { ActorHost } from "./host";
import { ownerOf, shardOf } from "./shards";

/**
 * This node's place in the cluster. Nodes announce themselves in a JetStream key-value bucket
 * (`<prefix>_nodes`, entries expire unless renewed) and hold shard leases in another
 * (`<prefix>_leases`, same expiry, taken and renewed by compare-and-set on the revision).
 *
 * Every round (a third of the lease life) a node renews what it holds, works out from the live
 * nodes which shards should be its own (rendezvous hashing: the same answer on every node), takes
 * the free ones, and hands back the ones another node should have (after letting their actors
 * finish). A node that stops renewing loses its leases when they expire; the others take them.
 *
 * Correctness never rests on the lease: a stale owner's write fails the snapshot's version check.
 */
export interface ClusterOptions {
  nodeId: string;
  prefix: string;
  shardCount: number;
  leaseTtlMs: number;
  /** Commands from other nodes handled at once, and waiting; past that, 503 OVERLOADED at once. */
  inFlightMax: number;
  waitingMax: number;
}

const OVERLOADED: Reply = refusal("OVERLOADED", "this node has too many commands in hand; retry with the same idempotency key");

interface Held {
  revision: number;
  since: number;
  /** The shard's command subjects, one per kind of actor: `<prefix>.wallet.<shard>.*` and `<prefix>.chama.<shard>.*`. */
  subscriptions: Subscription[];
}

/** Every kind of actor a shard holds, each with its own command subject. */
const SERVED_KINDS: readonly ActorKindName[] = ["wallet", "chama", "deposit"];

export class Cluster {
  private nodesKv!: KV;
  private leasesKv!: KV;
  private readonly held = new Map<number, Held>();
  /** Subscriptions the node cannot do without (its status/probe subject, the NATS API): one closed, the node is unhealthy. */
  private readonly vital = new Map<string, Subscription>();
  private timer: Timer | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  private liveNodes: string[] = [];
  private healthy: { ok: boolean; reason?: string } = { ok: true };
  private readonly gate: Gate;
  /** The holding last logged (shards and live nodes), so the log says when it changes, not every round. */
  private reported: string | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly host: ActorHost,
    private readonly bus: BusGuard,
    private readonly options: ClusterOptions,
  ) {
    this.gate = new Gate({ inFlightMax: options.inFlightMax, waitingMax: options.waitingMax });
  }

  /** Watch a subscription the node needs (the NATS API): if it closes, the node reports itself unhealthy. */
  watch(name: string, subscription: Subscription): void {
    this.vital.set(name, subscription);
  }

  async start(): Promise<void> {
    // A round must finish well inside a lease's life: JetStream calls give up after a third of it.
    const kvm = new Kvm(jetstream(this.nc, { timeout: Math.max(500, Math.floor(this.options.leaseTtlMs / 3)) }));
    const bucket = (name: string) => kvm.create(`${this.options.prefix}_${name}`, { ttl: this.options.leaseTtlMs, history: 1 });
    [this.nodesKv, this.leasesKv] = await Promise.all([bucket("nodes"), bucket("leases")]);
    // Other nodes ask for this node's status here, and the node asks itself (its health probe): only
    // signed requests are answered, with a signed reply.
    this.watch(
      "status",
      this.nc.subscribe(this.statusSubject(this.options.nodeId), {
        callback: (error, msg) => {
          if (error) return void this.bus.drop("failed", msg?.subject ?? "cluster.status");
          try {
            const opened = this.bus.open(msg.subject, msg.data);
            if (opened && msg.reply) msg.respond(this.bus.sealReply(opened.nonce, JSON.stringify(this.status())));
          } catch {
            this.bus.drop("failed", msg.subject);
          }
        },
      }),
    );
    await this.reconcile();
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.options.leaseTtlMs / 3)));
    // Back from a NATS outage: renew at once rather than at the next tick.
    void (async () => {
      for await (const s of this.nc.status()) if (s.type === "reconnect") this.tick();
    })().catch(() => {});
  }

  /** Leave cleanly: hand every shard back (after its actors drain) so others take them at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.round;
    await Promise.all([...this.held.keys()].map((shard) => this.release(shard)));
    await this.nodesKv?.delete(this.key("node", this.options.nodeId)).catch(() => {});
  }

  /** Every live node's status, asked over NATS (for /admin/cluster). */
  async clusterStatus() {
    const nodes = await Promise.all(
      this.liveNodes.map(async (nodeId) => {
        if (nodeId === this.options.nodeId) return this.status();
        const answer = await this.ask(nodeId, 1_000);
        return answer ? (JSON.parse(answer) as ReturnType<Cluster["status"]>) : { nodeId, unreachable: true };
      }),
    );
    return { shardCount: this.options.shardCount, leaseTtlMs: this.options.leaseTtlMs, answeredBy: this.options.nodeId, nodes };
  }

  /**
   * Whether this node can do its part: its NATS connection and subscriptions answer. A node that
   * cannot stops renewing its leases (others take its shards) and /health answers 503.
   */
  health(): { ok: boolean; reason?: string } {
    return this.healthy;
  }

  /**
   * Whether this node holds exactly the shards it should among the live nodes (what `/ready` asks):
   * false while a shard it should own is still leased to another node, or before its first round.
   */
  settled(): boolean {
    if (!this.liveNodes.length) return false;
    for (let shard = 0; shard < this.options.shardCount; shard++) {
      if ((ownerOf(shard, this.liveNodes) === this.options.nodeId) !== this.held.has(shard)) return false;
    }
    return true;
  }

  /** This node's view: who is alive and what it holds. */
  status() {
    const now = Date.now();
    return {
      nodeId: this.options.nodeId,
      shards: [...this.held.keys()].sort((a, b) => a - b),
      leaseAgesMs: Object.fromEntries([...this.held].map(([s, h]) => [s, now - h.since])),
      actorsLoaded: this.host.size,
      mailboxDepth: this.host.mailboxDepth,
      liveNodes: this.liveNodes,
      healthy: this.healthy.ok,
      busDropped: this.bus.dropped,
    };
  }

  /**
   * One round now, after the one under way (never two at once): for whoever must know a round has
   * run since something changed (tests wait on this rather than on the clock).
   */
  async runRound(): Promise<void> {
    for (let waited = 0; this.round && waited < 10; waited++) await this.round;
    this.tick();
    await this.round;
  }

  private tick(): void {
    if (this.stopped || this.round) return;
    this.round = this.reconcile()
      .catch((error) => log("warn", "cluster round failed; will retry", { error: reason(error) }))
      .finally(() => (this.round = undefined));
  }

  private async reconcile(): Promise<void> {
    // A node that cannot hear commands must not keep its shards: it stops renewing (and announcing
    // itself), so the others take them when the leases run out. It comes back once the probe passes.
    this.healthy = await this.probe();
    if (!this.healthy.ok) {
      log("warn", "node unhealthy: not renewing its leases", { nodeId: this.options.nodeId, reason: this.healthy.reason });
      return;
    }
    await this.nodesKv.put(this.key("node", this.options.nodeId), JSON.stringify({ at: Date.now() }));
    // A key listing can name a key twice (several stored revisions): count each node once.
    const nodes = new Set<string>([this.options.nodeId]);
    for await (const k of await this.nodesKv.keys(this.key("node", "*"))) nodes.add(k.slice("node.".length));
    this.liveNodes = [...nodes].sort();

    const work: Promise<unknown>[] = [];
    for (let shard = 0; shard < this.options.shardCount; shard++) {
      const mine = ownerOf(shard, this.liveNodes) === this.options.nodeId;
      const held = this.held.get(shard);
      // A shard with a dead subscription (either kind) is not fully served here: hand it back (it is
      // taken again, freshly subscribed).
      if (held?.subscriptions.some((s) => s.isClosed())) {
        work.push(this.release(shard));
        continue;
      }
      if (held && mine) work.push(this.renew(shard, held));
      else if (held && !mine) work.push(this.release(shard));
      else if (!held && mine) work.push(this.take(shard));
    }
    await Promise.all(work);
    this.reportHolding();
  }

  /**
   * One line when this node's holding has settled on something new: every shard it should own is
   * held and none it should not (a lease another node still holds settles when that one runs out).
   * Rounds that change nothing, and the steps on the way, log nothing.
   */
  private reportHolding(): void {
    const nodeId = this.options.nodeId;
    for (let shard = 0; shard < this.options.shardCount; shard++) {
      if ((ownerOf(shard, this.liveNodes) === nodeId) !== this.held.has(shard)) return;
    }
    const shards = [...this.held.keys()].sort((a, b) => a - b);
    const holding = `${shardRanges(shards)} of ${this.options.shardCount} among ${this.liveNodes.join(",")}`;
    if (holding === this.reported) return;
    this.reported = holding;
    log("info", "cluster: shards settled", {
      nodeId,
      shards: shardRanges(shards),
      held: shards.length,
      shardCount: this.options.shardCount,
      liveNodes: this.liveNodes,
    });
  }

  private async take(shard: number): Promise<void> {
    try {
      // Succeeds only if nobody holds the lease (never taken, expired, or handed back).
      const revision = await this.leasesKv.create(this.key("shard", shard), this.options.nodeId);
      this.held.set(shard, { revision, since: Date.now(), subscriptions: SERVED_KINDS.map((kind) => this.serve(kind, shard)) });
      log("debug", "took shard", { shard, nodeId: this.options.nodeId });
    } catch {
      // Still held by someone else; their lease runs out or they hand it back, then it is ours.
    }
  }

  private async renew(shard: number, held: Held): Promise<void> {
    try {
      held.revision = await this.leasesKv.update(this.key("shard", shard), this.options.nodeId, held.revision);
    } catch {
      // The lease expired and someone else took it (this node stalled): stop serving at once.
      log("warn", "lost a shard lease", { shard, nodeId: this.options.nodeId });
      await this.drop(shard);
    }
  }

  /** Stop taking commands for the shard, let its actors finish, then free the lease. */
  private async release(shard: number): Promise<void> {
    const held = this.held.get(shard);
    if (!held) return;
    await this.drop(shard);
    await this.leasesKv.delete(this.key("shard", shard), { previousSeq: held.revision }).catch(() => {});
  }

  private async drop(shard: number): Promise<void> {
    const held = this.held.get(shard);
    if (!held) return;
    this.held.delete(shard);
    await Promise.all(held.subscriptions.map((s) => s.drain().catch(() => {})));
    await this.host.dropWhere((walletId) => shardOf(walletId, this.options.shardCount) === shard);
  }

  /**
   * Commands for one kind of actor in one shard. Whatever arrives is checked by the bus guard
   * (signature, age, replay, shape, kind, shard) before an actor sees it; nothing a publisher sends
   * can throw out of this callback.
   */
  private serve(kind: ActorKindName, shard: number): Subscription {
    return this.nc.subscribe(`${this.options.prefix}.${kind}.${shard}.*`, {
      queue: `${this.options.prefix}-${kind}-${shard}`,
      callback: (error, msg) => {
        if (error) return void this.bus.drop("failed", `${this.options.prefix}.${kind}.${shard}`);
        try {
          if (!msg.reply) return void this.bus.drop("no_reply_subject", msg.subject);
          const command = this.bus.openCommand(msg.subject, msg.data);
          if (!command) return;
          void this.gate
            .run(() => this.host.dispatch(command.id, command.envelope), () => OVERLOADED)
            .then((outcome) => msg.respond(this.bus.sealOutcome(command.nonce, outcome)))
            .catch((e) => log("error", "command failed on this node", { error: reason(e) }));
        } catch (e) {
          this.bus.drop("failed", msg.subject, reason(e));
        }
      },
    });
  }

  /**
   * Can this node hear commands? Its connection is up, the subscriptions it needs are open, and a
   * signed request to itself goes through the server and back (so a dead reader is caught too).
   */
  private async probe(): Promise<{ ok: boolean; reason?: string }> {
    if (this.nc.isClosed()) return { ok: false, reason: "the NATS connection is closed" };
    for (const [name, sub] of this.vital) if (sub.isClosed()) return { ok: false, reason: `the ${name} subscription is closed` };
    const answer = await this.ask(this.options.nodeId, Math.max(250, Math.floor(this.options.leaseTtlMs / 5)));
    return answer === undefined ? { ok: false, reason: "the node does not hear its own probe" } : { ok: true };
  }

  /** A node's signed status, or undefined when it does not answer (or the answer is not a node's). */
  private async ask(nodeId: string, timeoutMs: number): Promise<string | undefined> {
    const subject = this.statusSubject(nodeId);
    const { payload, nonce } = this.bus.seal(subject, "");
    try {
      const reply = await this.nc.request(subject, payload, { timeout: timeoutMs });
      return this.bus.openReply(nonce, reply.data, subject);
    } catch {
      return undefined;
    }
  }

  private statusSubject(nodeId: string): string {
    return `${this.options.prefix}.cluster.status.${nodeId}`;
  }

  private key(kind: "node" | "shard", id: string | number): string {
    return `${kind}.${id}`;
  }
}

/** Sorted shard numbers as ranges, for people: `0-41,43,90-127` (`none` when empty). */
export function shardRanges(shards: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < shards.length; ) {
    let j = i;
    while (j + 1 < shards.length && shards[j + 1] === shards[j]! + 1) j++;
    parts.push(i === j ? `${shards[i]}` : `${shards[i]}-${shards[j]}`);
    i = j + 1;
  }
  return parts.length ? parts.join(",") : "none";
}
