import type { Db, Queryable } from "../../../lib/db";

/**
 * `chain_networks`: per network, whether new payouts may be signed (an operator's pause, or the
 * runway check's), and what the worker saw last (hot-wallet balance, block, nonce, drift). Paused
 * means waiting: nothing fails, broadcasts and tracking of what was signed go on.
 */
export interface NetworkState {
  paused: boolean;
  pausedBy: "operator" | "runway" | null;
}

export async function networkState(db: Db, network: string): Promise<NetworkState> {
  const [row] = await db`select paused, paused_by from chain_networks where network = ${network}`;
  return { paused: Boolean(row?.paused), pausedBy: (row?.paused_by as NetworkState["pausedBy"]) ?? null };
}

/** Pauses the network for want of runway, unless it is paused already; true when this call paused it. */
export async function pauseForRunway(db: Db, network: string, reason: string): Promise<boolean> {
  const rows = await db`insert into chain_networks (network, paused, paused_by, paused_reason, paused_at, updated_at)
      values (${network}, true, 'runway', ${reason}, now(), now())
    on conflict (network) do update set paused = true, paused_by = 'runway', paused_reason = excluded.paused_reason, paused_at = now(), updated_at = now()
      where not chain_networks.paused
    returning network`;
  return rows.length > 0;
}

/** Lifts a runway pause (never an operator's); true when it was lifted. */
export async function resumeFromRunway(db: Db, network: string): Promise<boolean> {
  const rows = await db`update chain_networks set paused = false, paused_by = null, paused_reason = null, paused_at = null, updated_at = now()
    where network = ${network} and paused and paused_by = 'runway' returning network`;
  return rows.length > 0;
}

export interface Seen {
  hotBalance?: bigint;
  lastBlock?: bigint;
  chainNonce?: bigint;
  /** What the last drift check found (null: none). */
  drift?: string | null;
}

export async function recordSeen(db: Queryable, network: string, seen: Seen): Promise<void> {
  const balance = seen.hotBalance === undefined ? null : seen.hotBalance.toString();
  const block = seen.lastBlock === undefined ? null : seen.lastBlock.toString();
  const nonce = seen.chainNonce === undefined ? null : seen.chainNonce.toString();
  const hasDrift = seen.drift !== undefined;
  await db`insert into chain_networks (network, hot_balance, hot_balance_at, last_block, last_block_at, chain_nonce, drift, updated_at)
      values (${network}, ${balance}, ${balance === null ? null : new Date()}, ${block}, ${block === null ? null : new Date()}, ${nonce}, ${seen.drift ?? null}, now())
    on conflict (network) do update set
      hot_balance = coalesce(excluded.hot_balance, chain_networks.hot_balance),
      hot_balance_at = coalesce(excluded.hot_balance_at, chain_networks.hot_balance_at),
      last_block = coalesce(excluded.last_block, chain_networks.last_block),
      last_block_at = coalesce(excluded.last_block_at, chain_networks.last_block_at),
      chain_nonce = coalesce(excluded.chain_nonce, chain_networks.chain_nonce),
      drift = case when ${hasDrift} then excluded.drift else chain_networks.drift end,
      updated_at = now()`;
}
