import type { Api } from "./node";

/** One node as GET /admin/cluster lists it. */
export interface NodeStatus {
  nodeId: string;
  shards?: number[];
  leaseAgesMs?: Record<string, number>;
  unreachable?: boolean;
}

/** The cluster as one node sees it; empty when that node does not answer (yet). */
export async function clusterView(api: Api): Promise<NodeStatus[]> {
  try {
    const res = await api("GET", "/admin/cluster");
    return res.status === 200 ? (res.body.nodes as NodeStatus[]) : [];
  } catch {
    return [];
  }
}

/**
 * Nothing announces "the shards have settled", so this polls `view` (bounded by `deadline_ms`, a
 * few lease lives) until exactly `expected` nodes are listed, each holding some shards, and every
 * one of the `shardCount` shards is held by exactly one node. Throws with the last view otherwise.
 */
export async function shardsSettled(view: () => Promise<NodeStatus[]>, expected: string[], shardCount: number, deadline_ms: number): Promise<NodeStatus[]> {
  const until = Date.now() + deadline_ms;
  const wanted = [...expected].sort().join();
  let last: NodeStatus[] = [];
  while (Date.now() < until) {
    last = await view();
    const held = last.flatMap((n) => n.shards ?? []);
    const ids = last.map((n) => n.nodeId).sort().join();
    if (ids === wanted && last.every((n) => (n.shards?.length ?? 0) > 0) && held.length === shardCount && new Set(held).size === shardCount) return last;
    await Bun.sleep(100);
  }
  throw new Error(`cluster did not settle on ${wanted} holding all ${shardCount} shards within ${deadline_ms} ms: ${JSON.stringify(last)}`);
}
