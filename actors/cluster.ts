import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { log, reason } from "../lib/log";
import { refusal } from "../lib/errors";
import { Gate } from "../lib/gate";
import type { BusGuard } from "./bus/guard";
import type { Envelope, Reply } from "./envelope";
import { batchSubject, commandSubject, decodeBatch, DROPPED, encodeBatchReply, NOT_MINE, type ItemAnswer } from "./forwarding";
import type { ShardOwners } from "./nats-router";
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
  /** This node's public base URL (PUBLIC_URL): announced in the nodes bucket and named in answers to forwarded commands, so callers can come straight here. */
  publicUrl?: string | undefined;
  /**
   * Background jobs that must run on one node at a time (the outbox relay, monitoring, ...): each
   * has its own lease (`singleton.<name>` in the leases bucket), taken, renewed and lost like a
   * shard's and spread over the live nodes the same way (src/workers/ownership.ts).
   */
  singletons?: readonly string[];
}

/** A lease expires this long after its expiry by the server's clock before a round looks again (clock steps, timer jitter). */
const WAKE_MARGIN_MS = 25;

interface HeldSingleton {
  revision: number;
  /** The revision it was taken at: grows with every new holder (a fencing token). */
  token: number;
  since: number;
}

const OVERLOADED: Reply = refusal("OVERLOADED", "this node has too many commands in hand; retry with the same idempotency key");

interface Held {
  revision: number;
  since: number;
  /** The shard's command subjects, one per kind of actor: `<prefix>.wallet.<shard>.*` and `<prefix>.chama.<shard>.*`. */
  subscriptions: Subscription[];
}

const UTF8 = new TextEncoder();

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
  private readonly singletons = new Map<string, HeldSingleton>();
  /** The server's clock minus this node's (from its own announcement's timestamp), so lease ages are read by the server's clock. */
  private serverOffsetMs = 0;
  /** When (this node's clock) a lease seen this round runs out, if sooner than the next regular round: a round runs then. */
  private wakeAtMs = Number.POSITIVE_INFINITY;
  private wakeTimer: Timer | undefined;
  /** A round was asked for while one was running: it runs right after. */
  private roundAgain = false;
  /** What this node held after the last round (shards and singletons), to tell the workers when it gained something. */
  private holding = "";
  private readonly holdingListeners: (() => void)[] = [];

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
    // Commands other nodes forward here many to a message (actors/forwarding.ts).
    this.watch("commands", this.serveBatches());
    await this.reconcile();
    this.scheduleWake();
    this.timer = setInterval(() => void this.tick(), this.roundEveryMs());
    // Back from a NATS outage: renew at once rather than at the next tick.
    void (async () => {
      for await (const s of this.nc.status()) if (s.type === "reconnect") this.tick();
    })().catch(() => {});
  }

  /** Leave cleanly: hand every shard back (after its actors drain) so others take them at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.wakeTimer);
    await this.round;
    await Promise.all([...this.held.keys()].map((shard) => this.release(shard)));
    await Promise.all([...this.singletons.keys()].map((name) => this.releaseSingleton(name)));
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
      singletons: [...this.singletons.keys()].sort(),
      leaseAgesMs: Object.fromEntries([...this.held].map(([s, h]) => [s, now - h.since])),
      actorsLoaded: this.host.size,
      mailboxDepth: this.host.mailboxDepth,
      liveNodes: this.liveNodes,
      healthy: this.healthy.ok,
      busDropped: this.bus.dropped,
      ...(this.options.publicUrl ? { publicUrl: this.options.publicUrl } : {}),
      ...(this.forwarded ? { forwarded: { ...this.forwarded() } } : {}),
    };
  }

  /** The shards this node holds now: their background work (sagas, payouts) is this node's. */
  heldShards(): number[] {
    return [...this.held.keys()];
  }

  /** Whether this node holds the singleton lease `name` now: its job runs here and on no other node. */
  leads(name: string): boolean {
    return this.singletons.has(name);
  }

  /** The singleton lease's fencing token while this node holds it: the revision it was taken at, larger for every later holder. */
  fence(name: string): number | undefined {
    return this.singletons.get(name)?.token;
  }

  /** Called after a round in which this node took a shard or a singleton (the workers look at once). */
  onGain(listener: () => void): void {
    this.holdingListeners.push(listener);
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

  /** A round, unless one is running: then none (`again`: one right after it). */
  private tick(again = false): void {
    if (this.stopped) return;
    if (this.round) {
      this.roundAgain ||= again;
      return;
    }
    this.round = this.reconcile()
      .catch((error) => log("warn", "cluster round failed; will retry", { error: reason(error) }))
      .finally(() => {
        this.round = undefined;
        this.scheduleWake();
        if (this.roundAgain) {
          this.roundAgain = false;
          this.tick();
        }
      });
  }

  /**
   * Rounds come every third of the lease life; a lease seen this round that runs out before the next
   * one (a silent node's announcement, a dead holder's shard lease) gets a round of its own at that
   * moment, so its shards move the moment the lease life is over rather than up to a round later.
   */
  private scheduleWake(): void {
    clearTimeout(this.wakeTimer);
    const inMs = this.wakeAtMs - Date.now();
    this.wakeAtMs = Number.POSITIVE_INFINITY;
    if (this.stopped || !Number.isFinite(inMs) || inMs >= this.roundEveryMs()) return;
    this.wakeTimer = setTimeout(() => this.tick(true), Math.max(10, inMs));
  }

  private roundEveryMs(): number {
    return Math.max(100, Math.floor(this.options.leaseTtlMs / 3));
  }

  /** The server's clock, as near as this node knows it (never ahead of it by more than a round trip). */
  private serverNow(): number {
    return Date.now() + this.serverOffsetMs;
  }

  /** A lease (by the server's clock) runs out then: look again at that moment if it is before the next round. */
  private wakeBy(expiresAtServerMs: number): void {
    this.wakeAtMs = Math.min(this.wakeAtMs, expiresAtServerMs - this.serverOffsetMs + WAKE_MARGIN_MS);
  }

  private async reconcile(): Promise<void> {
    // A node that cannot hear commands must not keep its shards: it stops renewing (and announcing
    // itself), so the others take them when the leases run out. It comes back once the probe passes.
    this.healthy = await this.probe();
    if (!this.healthy.ok) {
      log("warn", "node unhealthy: not renewing its leases", { nodeId: this.options.nodeId, reason: this.healthy.reason });
      return;
    }
    this.liveNodes = await this.announce();

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
    for (const name of this.options.singletons ?? []) {
      const mine = singletonOwner(name, this.liveNodes) === this.options.nodeId;
      const held = this.singletons.get(name);
      if (held && mine) work.push(this.renewSingleton(name, held));
      else if (held && !mine) work.push(this.releaseSingleton(name));
      else if (!held && mine) work.push(this.takeSingleton(name));
    }
    await Promise.all(work);
    this.reportHolding();
    this.tellIfGained();
  }

  /**
   * Announce this node, then list the live ones. A node is live while its announcement is younger
   * than the lease life by the server's clock (the entry's timestamp), whether or not the bucket has
   * expired the entry yet: a node that died is seen dead the moment its lease life is over. The
   * node's own announcement, just written, gives the server's time.
   */
  private async announce(): Promise<string[]> {
    const own = this.key("node", this.options.nodeId);
    await this.nodesKv.put(own, JSON.stringify({ at: Date.now(), ...(this.options.publicUrl ? { publicUrl: this.options.publicUrl } : {}) }));
    const written = Date.now();
    // A key listing can name a key twice (several stored revisions): read each node once.
    const keys = new Set<string>([own]);
    for await (const k of await this.nodesKv.keys(this.key("node", "*"))) keys.add(k);
    const entries = await Promise.all([...keys].map((k) => this.nodesKv.get(k).catch(() => null)));
    const mine = entries.find((e) => e?.key === own && e.operation === "PUT");
    // (Written no later than `written` by the server's clock: the offset errs on the late side.)
    if (mine) this.serverOffsetMs = mine.created.getTime() - written;
    const nodes = new Set<string>([this.options.nodeId]);
    for (const e of entries) {
      if (!e || e.key === own || e.operation !== "PUT") continue;
      const expiresAt = e.created.getTime() + this.options.leaseTtlMs;
      if (expiresAt <= this.serverNow()) continue; // silent for a whole lease life: dead, whatever the bucket still says
      nodes.add(e.key.slice("node.".length));
      this.wakeBy(expiresAt);
    }
    return [...nodes].sort();
  }

  /**
   * Takes a lease: by creating it (nobody holds it: never taken, handed back, or expired by the
   * server), or by compare-and-set on the revision when its holder has not renewed it for a whole
   * lease life (dead, though the bucket has not expired the entry yet) or is this node in an earlier
   * life (same NODE_ID, restarted). The revision it was taken at, or undefined while someone holds it.
   */
  private async acquire(key: string): Promise<number | undefined> {
    try {
      return await this.leasesKv.create(key, this.options.nodeId);
    } catch {
      // Someone holds it, or held it: look at when it was last renewed.
    }
    const entry = await this.leasesKv.get(key).catch(() => null);
    if (!entry) return undefined;
    const expiresAt = entry.created.getTime() + this.options.leaseTtlMs;
    if (entry.operation === "PUT" && entry.string() !== this.options.nodeId && expiresAt > this.serverNow()) {
      this.wakeBy(expiresAt);
      return undefined;
    }
    try {
      return await this.leasesKv.update(key, this.options.nodeId, entry.revision);
    } catch {
      return undefined; // another node was quicker
    }
  }

  /** Tell whoever listens (the background workers) that this node now holds something it did not. */
  private tellIfGained(): void {
    const now = [...[...this.held.keys()].map(String), ...[...this.singletons.keys()].map((n) => `s:${n}`)];
    const before = new Set(this.holding ? this.holding.split(",") : []);
    this.holding = now.sort().join(",");
    if (!now.some((h) => !before.has(h))) return;
    for (const listener of this.holdingListeners) {
      try {
        listener();
      } catch (error) {
        log("warn", "a holding listener failed", { error: reason(error) });
      }
    }
  }

  private async takeSingleton(name: string): Promise<void> {
    const revision = await this.acquire(this.key("singleton", name));
    if (revision === undefined) return;
    this.singletons.set(name, { revision, token: revision, since: Date.now() });
    log("debug", "took singleton", { name, nodeId: this.options.nodeId });
  }

  private async renewSingleton(name: string, held: HeldSingleton): Promise<void> {
    try {
      held.revision = await this.leasesKv.update(this.key("singleton", name), this.options.nodeId, held.revision);
    } catch {
      log("warn", "lost a singleton lease", { name, nodeId: this.options.nodeId });
      this.singletons.delete(name);
    }
  }

  private async releaseSingleton(name: string): Promise<void> {
    const held = this.singletons.get(name);
    if (!held) return;
    this.singletons.delete(name);
    await this.leasesKv.delete(this.key("singleton", name), { previousSeq: held.revision }).catch(() => {});
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
      // Succeeds only if nobody holds the lease (never taken, expired, or handed back) or its holder is gone.
      const revision = await this.acquire(this.key("shard", shard));
      if (revision === undefined) return;
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
   * Commands other nodes send this node many to a message (actors/forwarding.ts). The message is
   * opened like any signed node message; then every command in it is opened by the bus guard as if
   * it had arrived alone on its own subject (signature, age, replay, shape, kind, shard), so one bad
   * command is dropped by itself. The good ones run at once, side by side (their actors group-commit
   * them together), and one signed reply answers them all in order. A command for a shard this node
   * does not hold is answered "not mine": the sender asks that shard's subject instead; it is never
   * forwarded again from here.
   */
  private serveBatches(): Subscription {
    const subject = batchSubject(this.options.prefix, this.options.nodeId);
    return this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return void this.bus.drop("failed", subject);
        try {
          if (!msg.reply) return void this.bus.drop("no_reply_subject", msg.subject);
          const opened = this.bus.open(msg.subject, msg.data);
          if (!opened) return;
          const items = decodeBatch(opened.body);
          if (!items) return void this.bus.drop("invalid", msg.subject);
          const answers = items.map(([itemSubject, payload]): ItemAnswer | Promise<Reply> => {
            const target = commandSubject(this.options.prefix, itemSubject, SERVED_KINDS);
            if (!target) return this.bus.drop("wrong_shard", itemSubject) ?? DROPPED;
            if (!this.held.has(target.shard)) return NOT_MINE;
            const command = this.bus.openCommand(itemSubject, UTF8.encode(payload));
            if (!command) return DROPPED;
            return this.gate.run(() => this.host.dispatch(command.id, command.envelope), () => OVERLOADED);
          });
          void Promise.all(answers)
            .then((outcomes) => msg.respond(this.bus.sealReply(opened.nonce, encodeBatchReply(this.options.nodeId, this.options.publicUrl, outcomes))))
            .catch((e) => log("error", "forwarded commands failed on this node", { error: reason(e) }));
        } catch (e) {
          this.bus.drop("failed", msg.subject, reason(e));
        }
      },
    });
  }

  /** What the router needs for its short cuts (actors/nats-router.ts): what this node holds, and who should own the rest. */
  /** The router's counts of commands it sent since start (batches, commands in them, single ones, run here), for status(). */
  forwarded: (() => Readonly<Record<string, number>>) | undefined;
  private ownersFor: string[] | undefined;
  private readonly owners = new Map<number, string | undefined>();

  shardOwners(): ShardOwners {
    return {
      nodeId: this.options.nodeId,
      holds: (shard) => this.held.has(shard),
      ownerOf: (shard) => {
        // Worked out once per shard for each list of live nodes (a round makes a new list when it changes).
        if (this.ownersFor !== this.liveNodes) {
          this.ownersFor = this.liveNodes;
          this.owners.clear();
        }
        let owner = this.owners.get(shard);
        if (owner === undefined && !this.owners.has(shard)) this.owners.set(shard, (owner = ownerOf(shard, this.liveNodes)));
        return owner;
      },
      dispatch: (id: string, envelope: Envelope) => this.host.dispatch(id, envelope),
    };
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

  private key(kind: "node" | "shard" | "singleton", id: string | number): string {
    return `${kind}.${id}`;
  }
}

/** Which live node runs the singleton job `name`: rendezvous hashing, as shards are spread. */
export function singletonOwner(name: string, nodes: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const node of nodes) {
    const score = BigInt(Bun.hash.wyhash(`${node}#singleton:${name}`));
    if (score > bestScore || (score === bestScore && node < best!)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
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
