/**
 * Which shard a wallet lives on, and which node should own a shard. Both are pure and stable:
 * every node computes the same answers from the same inputs, with no coordination.
 */
export function shardOf(walletId: string, shardCount: number): number {
  // FNV-1a, 32 bits: fast, stable across processes and versions (never change it: it moves wallets).
  let hash = 0x811c9dc5;
  for (let i = 0; i < walletId.length; i++) {
    hash ^= walletId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shardCount;
}

/**
 * Rendezvous (highest random weight) hashing: each shard goes to the node with the highest score
 * for it. Shards spread evenly, and when a node joins or leaves only the shards it gains or loses
 * move.
 */
export function ownerOf(shard: number, nodes: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const node of nodes) {
    // wyhash mixes short, similar inputs ("n1#7", "n2#7") well; a weak hash here would hand one
    // node most shards.
    const score = BigInt(Bun.hash.wyhash(`${node}#${shard}`));
    if (score > bestScore || (score === bestScore && node < best!)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}
