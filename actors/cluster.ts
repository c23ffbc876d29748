import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { log, reason } from "../src/log";
import { decode, encode } from "./codec";
import type { Envelope } from "./envelope";
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
}

interface Held {
  revision: number;
  since: number;
  subscription: Subscription;
}

export class Cluster {
  private nodesKv!: KV;
  private leasesKv!: KV;
  private readonly held = new Map<number, Held>();
  private timer: Timer | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  private liveNodes: string[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly host: ActorHost,
    private readonly options: ClusterOptions,
  ) {}

  async start(): Promise<void> {
    // A round must finish well inside a lease's life: JetStream calls give up after a third of it.
    const kvm = new Kvm(jetstream(this.nc, { timeout: Math.max(500, Math.floor(this.options.leaseTtlMs / 3)) }));
    const bucket = (name: string) => kvm.create(`${this.options.prefix}_${name}`, { ttl: this.options.leaseTtlMs, history: 1 });
    [this.nodesKv, this.leasesKv] = await Promise.all([bucket("nodes"), bucket("leases")]);
    this.nc.subscribe(`${this.options.prefix}.cluster.status.${this.options.nodeId}`, {
      callback: (_e, msg) => {
        msg.respond(JSON.stringify(this.status()));
      },
    });
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
        try {
          const reply = await this.nc.request(`${this.options.prefix}.cluster.status.${nodeId}`, "", { timeout: 1_000 });
          return JSON.parse(reply.string()) as ReturnType<Cluster["status"]>;
        } catch {
          return { nodeId, unreachable: true };
        }
      }),
    );
    return { shardCount: this.options.shardCount, leaseTtlMs: this.options.leaseTtlMs, answeredBy: this.options.nodeId, nodes };
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
    };
  }

  private tick(): void {
    if (this.stopped || this.round) return;
    this.round = this.reconcile()
      .catch((error) => log("warn", "cluster round failed; will retry", { error: reason(error) }))
      .finally(() => (this.round = undefined));
  }

  private async reconcile(): Promise<void> {
    await this.nodesKv.put(this.key("node", this.options.nodeId), JSON.stringify({ at: Date.now() }));
    // A key listing can name a key twice (several stored revisions): count each node once.
    const nodes = new Set<string>([this.options.nodeId]);
    for await (const k of await this.nodesKv.keys(this.key("node", "*"))) nodes.add(k.slice("node.".length));
    this.liveNodes = [...nodes].sort();

    const work: Promise<unknown>[] = [];
    for (let shard = 0; shard < this.options.shardCount; shard++) {
      const mine = ownerOf(shard, this.liveNodes) === this.options.nodeId;
      const held = this.held.get(shard);
      if (held && mine) work.push(this.renew(shard, held));
      else if (held && !mine) work.push(this.release(shard));
      else if (!held && mine) work.push(this.take(shard));
    }
    await Promise.all(work);
  }

  private async take(shard: number): Promise<void> {
    try {
      // Succeeds only if nobody holds the lease (never taken, expired, or handed back).
      const revision = await this.leasesKv.create(this.key("shard", shard), this.options.nodeId);
      this.held.set(shard, { revision, since: Date.now(), subscription: this.serve(shard) });
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
    await held.subscription.drain().catch(() => {});
    await this.host.dropWhere((walletId) => shardOf(walletId, this.options.shardCount) === shard);
  }

  private serve(shard: number): Subscription {
    return this.nc.subscribe(`${this.options.prefix}.wallet.${shard}.*`, {
      queue: `${this.options.prefix}-wallet-${shard}`,
      callback: (_error, msg) => {
        const walletId = msg.subject.slice(msg.subject.lastIndexOf(".") + 1);
        void this.host
          .dispatch(walletId, decode<Envelope>(msg.string()))
          .then((outcome) => msg.respond(encode(outcome)))
          .catch((error) => log("error", "wallet command failed on this node", { walletId, error: reason(error) }));
      },
    });
  }

  private key(kind: "node" | "shard", id: string | number): string {
    return `${kind}.${id}`;
  }
}
