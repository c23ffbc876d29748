import type { Db } from "../../lib/db";

/**
 * Who does which background work, so that on several nodes each piece is done once, not once per
 * node over the same rows:
 *
 * - per-shard work (the transfer and deposit sagas, the Stripe payout worker) belongs to the node
 *   holding the shard of the outbox row's aggregate (the wallet, chama or deposit that committed
 *   it): `mineOnly` adds that filter to a worker's query;
 * - the rest runs on one node at a time, the holder of its singleton lease (actors/cluster.ts):
 *   a pass elsewhere does nothing (`leads`).
 *
 * Without NATS (one node) everything is this node's. Correctness never rests on this: every step
 * is keyed and every write fenced, so two nodes briefly doing the same work (a lease changing hands)
 * still have one effect; ownership only keeps the work (and the database's load) from multiplying.
 */
export interface Ownership {
  readonly shardCount: number;
  /** The shards whose work is this node's now; undefined: every shard (one node, no cluster). */
  shards(): readonly number[] | undefined;
  /** Whether this node runs the singleton job `name` now. */
  leads(name: Singleton): boolean;
}

/** The background jobs that run on one node at a time, each under its own lease. */
export const SINGLETONS = [
  "outbox-relay",
  "webhook-delivery",
  "monitoring",
  "chama-expiry",
  "idempotency-expiry",
  "chain-sweep-evm",
  "chain-sweep-solana",
  "stripe-events",
] as const;
export type Singleton = (typeof SINGLETONS)[number];

/** One node, no cluster: all of it is this node's. */
export const EVERYTHING: Ownership = { shardCount: 1, shards: () => undefined, leads: () => true };

/**
 * `and <shard of the column> = any(<this node's shards>)`, or nothing when every shard is this
 * node's; undefined when this node holds no shard at all (the pass has nothing to read). The shard
 * is actors/shards.ts `shardOf`, computed by the database (`coffer_shard_of`, migration 030).
 */
export function mineOnly(db: Db, ownership: Ownership, column: "aggregate_id") {
  const shards = ownership.shards();
  if (shards === undefined) return db``;
  if (!shards.length) return undefined;
  return db`and coffer_shard_of(${db(column)}::text, ${ownership.shardCount}) = any(${db.array([...shards])}::int[])`;
}
