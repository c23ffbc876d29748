import type { Db, Queryable } from "../../../lib/db";

/**
 * One signer per (network, hot-wallet address) across the cluster, fenced like actors are: a lease
 * row with a holder and a token that grows whenever another holder takes it over. A holder renews
 * its lease each pass; another node may take it only after it expired. Every signature (nonce
 * allocation, replacement, cancellation) is stored in a transaction that first checks, under a row
 * lock, that this holder still has the lease with the token it was given: a node that lost its lease
 * (paused, partitioned) and wakes up cannot store a second transaction for a nonce.
 */
export class SignerLease {
  private readonly tokens = new Map<string, bigint>();

  constructor(
    private readonly db: Db,
    /** This process's name in the cluster (NODE_ID): a restarted node takes its own lease back at once. */
    private readonly holder: string,
    private readonly ttlMs = 30_000,
  ) {}

  /** Takes or renews the lease; true when this holder has it now. */
  async acquire(network: string, address: string): Promise<boolean> {
    const rows = await this.db`insert into chain_signer_leases (network, address, holder, token, expires_at)
        values (${network}, ${address}, ${this.holder}, 1, now() + ${this.ttlMs} * interval '1 millisecond')
      on conflict (network, address) do update set
        token = chain_signer_leases.token + case when chain_signer_leases.holder = excluded.holder then 0 else 1 end,
        holder = excluded.holder, expires_at = excluded.expires_at
        where chain_signer_leases.holder = excluded.holder or chain_signer_leases.expires_at < now()
      returning token::text as token`;
    const key = `${network}|${address}`;
    if (!rows.length) {
      this.tokens.delete(key);
      return false;
    }
    this.tokens.set(key, BigInt(rows[0]!.token as string));
    return true;
  }

  /** Inside a signing transaction: whether this holder still has the lease with its token (locks the row until commit). */
  async holds(tx: Queryable, network: string, address: string): Promise<boolean> {
    const token = this.tokens.get(`${network}|${address}`);
    if (token === undefined) return false;
    const rows = await tx`select 1 from chain_signer_leases where network = ${network} and address = ${address}
      and holder = ${this.holder} and token = ${token.toString()} and expires_at > now() for update`;
    return rows.length > 0;
  }

  /** Gives the leases up (a clean shutdown), so another node signs without waiting for them to expire. */
  async release(): Promise<void> {
    await this.db`delete from chain_signer_leases where holder = ${this.holder}`;
    this.tokens.clear();
  }
}
