import { PublicKey, SystemProgram, Transaction, type SignatureStatus } from "@solana/web3.js";
import { base58 } from "@scure/base";
import type { Db } from "../../../lib/db";
import { log, reason } from "../../../lib/log";
import type { WalletService } from "../../api/wallet-service";
import type { Vault } from "../../security/encryption";
import { crashPoint } from "../../crash";
import type { SolanaNetwork } from "../chain/config";
import { raiseChainAlert } from "../chain/alerts";
import { bookNetworkFee } from "../chain/fee-ledger";
import { networkState, pauseForRunway, recordSeen, resumeFromRunway } from "../chain/network-state";
import { ChainPayoutWorker, now, type ChainPayoutStatus, type PayoutWorkerOptions, type StepResult } from "../chain/payout-worker";
import { SolanaRpc, SolanaRpcUnreachable } from "./rpc";

/**
 * Chain payouts on Solana: SOL withdrawals (lamports) to crypto destinations on the `kind: "solana"`
 * networks of NETWORKS_FILE, paid from that network's hot wallet. One withdrawal, one row of
 * `chain_payouts` (asset `SOL`), one step at a time, as EvmPayouts does for EVM networks:
 *
 * 1. claim: the row (`claimed`, the hot wallet and the destination address), then the wallet marks it
 *    sent (`withdrawal.payout.send`: processing, hold kept). An owner's cancel that came first wins.
 * 2. sign: a recent blockhash, a System transfer signed by the hot wallet; its signature (`tx_hash`),
 *    its bytes (`raw_tx`, base64) and the blockhash's `last_valid_block_height` are stored (`signed`,
 *    and appended to `attempts`) in one Postgres transaction BEFORE anything is sent. After a crash
 *    the stored bytes are sent again, never a new signature.
 * 3. broadcast: `sendTransaction` of the stored bytes (the same signature may be sent any number of
 *    times: the cluster runs a signature once); tracking starts with the next pass.
 * 4. track: `getSignatureStatuses` of EVERY signature in `attempts`. Landed: final at `finalized`
 *    only; landed with an error means mined and failed (the fee is spent, the transfer is not; those
 *    bytes can never run again), so the withdrawal fails as an EVM revert does. Not landed: while its
 *    blockhash may still be used the same bytes are sent again; once the FINALIZED block height has
 *    passed the newest attempt's `last_valid_block_height` and no attempt landed, no signed
 *    transaction for it can ever land, and only then is it re-signed (a new blockhash, a new
 *    signature, stored before sending, appended to `attempts`). The height is read before the
 *    statuses, so a transaction that landed in between is seen.
 * 5. complete: the wallet completes the withdrawal once (`withdrawal.payout.complete`, keyed); the
 *    fee paid (lamports, from the landed transaction) is on the row (`fee_wei`) and booked once to
 *    `system:network_fees:<network>` (src/integrations/chain/fee-ledger.ts).
 *
 * Before any signature: a network paused by an operator signs nothing (what was signed is still sent
 * and tracked), and the hot wallet must cover the payout, the others signed and not final, and the
 * fee margin; short, the network pauses for runway and an alert is raised (payouts wait, nothing
 * fails) until it is topped up. No nonce and no signer lease: two workers racing on one payout may
 * both sign, but only the one whose row update still finds the attempts it read stores (and so
 * sends) its signature.
 *
 * Failure rule: a withdrawal fails (hold released) only when nothing signed for it can land any
 * more: never signed (a transfer below a new account's rent-exempt minimum is refused before
 * signing), landed and failed, or an operator's cancel (`operator_action = 'cancel'`) once every
 * attempt's blockhash has expired unlanded. Without a cancel an expired payout is simply re-signed.
 * Anything uncertain parks (`parked`, `parked_from`, `last_error`) for an operator. An RPC that does
 * not answer changes nothing: the step is tried again later.
 */
export type SolanaPayoutStatus = ChainPayoutStatus;
export type { StepResult };

/** One signature tried for a payout (an element of `attempts`). */
export interface SolanaAttempt {
  /** The transaction's signature (base58): its id on chain. */
  hash: string;
  /** The signed transaction, base64. */
  raw: string;
  blockhash: string;
  lastValidBlockHeight: string;
  kind: "payout";
  at: string;
}

export interface SolanaPayoutRow {
  withdrawal_id: string;
  wallet_id: string;
  network: string;
  from_address: string;
  to_address: string | null;
  amount: string;
  status: SolanaPayoutStatus;
  tx_hash: string | null;
  raw_tx: string | null;
  last_valid_block_height: string | null;
  block_number: string | null;
  fee_wei: string | null;
  attempts: SolanaAttempt[];
  operator_action: "retry" | "cancel" | "replace" | null;
  parked_from: SolanaPayoutStatus | null;
  last_error: string | null;
  stage_failures: number;
  withdrawal_fee: string;
}


export interface SolanaPayoutsOptions extends PayoutWorkerOptions {
  /** Each RPC call's bound before the next URL is tried (default 5 s). */
  rpcTimeoutMs?: number;
  /** Blocks past expiry within which an unlanded payout is re-signed (default HISTORY_WINDOW_BLOCKS); later it parks. */
  historyWindowBlocks?: bigint;
}

/** Signatures tried for one payout at most; past it the payout parks (each needs ~150 blocks to expire first). */
const MAX_ATTEMPTS = 32;
/**
 * How far past an attempt's last valid height its absence is still trusted. An RPC node keeps the
 * statuses of old transactions only as long as its ledger (hours to days): a payout first looked at
 * long after it expired (a worker down that long) could have landed where the node no longer looks,
 * so it parks for an operator instead of being signed again (about 5.5 hours of 400 ms blocks).
 */
const HISTORY_WINDOW_BLOCKS = 50_000n;

export class SolanaPayouts extends ChainPayoutWorker<SolanaPayoutRow, SolanaNetwork> {
  private readonly rpcs = new Map<string, SolanaRpc>();

  constructor(
    db: Db,
    wallets: WalletService,
    vault: Vault,
    networks: Record<string, SolanaNetwork>,
    pollMs = 2_000,
    afterMonitoring = false,
    protected override readonly options: SolanaPayoutsOptions = {},
  ) {
    super(db, wallets, vault, networks, "solana payouts", pollMs, afterMonitoring, options);
    for (const [name, n] of Object.entries(networks)) this.rpcs.set(name, new SolanaRpc(n.rpcUrls, options.rpcTimeoutMs ?? 5_000));
  }

  protected chainAddress(address: string): string {
    return address;
  }

  protected tokenOf(): string | null {
    return null;
  }

  /** Per network each pass: the block height, for GET /admin/networks. */
  protected async observe(network: string): Promise<void> {
    try {
      const height = BigInt(await this.rpcs.get(network)!.call("getBlockHeight", (c) => c.getBlockHeight("confirmed")));
      await recordSeen(this.db, network, { lastBlock: height });
    } catch (error) {
      if (!(error instanceof SolanaRpcUnreachable)) throw error;
    }
  }

  protected async stage(withdrawalId: string, p: SolanaPayoutRow | undefined): Promise<StepResult> {
    if (!p) return this.claim(withdrawalId);
    if (p.operator_action === "cancel" && !["completed", "failed", "dropped", "cancelled", "confirmed"].includes(p.status)) return this.cancel(p);
    if (p.operator_action === "replace" || p.operator_action === "retry") {
      // Solana has no fee replacement: an expired payout is re-signed by itself.
      log("info", "an operator action that does not apply to this solana payout was cleared", { withdrawalId, action: p.operator_action });
      await this.db`update chain_payouts set operator_action = null, updated_at = now() where withdrawal_id = ${withdrawalId} and operator_action = ${p.operator_action}`;
      return "done";
    }
    switch (p.status) {
      case "claimed":
        return this.sign(p);
      case "signed":
        return this.broadcast(p);
      case "broadcast":
        return this.track(p);
      case "confirmed":
        return this.complete(p);
      default:
        return "done";
    }
  }

  /** Stage 2: the first signature, stored before anything is sent. */
  async sign(p: SolanaPayoutRow): Promise<StepResult> {
    return this.signAttempt(p, "claimed");
  }

  /** Stage 3: the stored bytes, sent (again). */
  async broadcast(p: SolanaPayoutRow): Promise<StepResult> {
    if (!p.raw_tx) {
      await this.park(p.withdrawal_id, p.status, "no_stored_transaction");
      return "done";
    }
    const sent = await this.send(p, p.raw_tx);
    if (sent === "retry") return "retry";
    if (sent === "sent") crashPoint("chain.after_broadcast");
    await this.db`update chain_payouts set status = 'broadcast', broadcast_at = now(), updated_at = now() where withdrawal_id = ${p.withdrawal_id} and status = 'signed'`;
    // Nothing lands the moment it is sent: the next pass tracks it (and sends it again if it must).
    return "wait";
  }

  /** Stage 4: every signature's status; final at `finalized`; re-signed only when none can land any more. */
  async track(p: SolanaPayoutRow): Promise<StepResult> {
    let seen: Seen;
    try {
      seen = await this.inspect(p);
    } catch (error) {
      log("warn", "solana rpc did not answer while tracking a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    if (seen.landed.length > 1) {
      await this.park(p.withdrawal_id, p.status, "several_signatures_landed");
      return "done";
    }
    const [hit] = seen.landed;
    if (hit) return this.landed(p, hit.attempt, hit.status);
    if (!seen.expired) {
      // Not landed yet and still able to: the same bytes again (nodes drop what they could not forward).
      const latest = p.attempts[p.attempts.length - 1];
      if (latest) await this.send(p, latest.raw);
      return "wait";
    }
    if (seen.blocksPast > (this.options.historyWindowBlocks ?? HISTORY_WINDOW_BLOCKS)) {
      await this.park(p.withdrawal_id, p.status, "expired_beyond_history_window");
      return "done";
    }
    if (p.attempts.length >= MAX_ATTEMPTS) {
      await this.park(p.withdrawal_id, p.status, "too_many_expired_signatures");
      return "done";
    }
    log("warn", "a solana payout's blockhash expired before it landed; signing it again", { withdrawalId: p.withdrawal_id, network: p.network, attempts: p.attempts.length });
    return this.signAttempt(p, "broadcast");
  }

  async row(withdrawalId: string): Promise<SolanaPayoutRow | undefined> {
    const [row] = await this.db`select withdrawal_id, wallet_id, network, from_address, to_address, amount::text as amount, status,
        tx_hash, raw_tx, last_valid_block_height::text as last_valid_block_height, block_number::text as block_number,
        fee_wei::text as fee_wei, attempts, operator_action, parked_from, last_error, stage_failures, withdrawal_fee::text as withdrawal_fee
      from chain_payouts where withdrawal_id = ${withdrawalId}`;
    return row as unknown as SolanaPayoutRow | undefined;
  }

  /**
   * A new signature for the payout (the first from `claimed`, a re-sign from `broadcast` once every
   * earlier one expired unlanded): stored with its bytes and blockhash expiry, in one transaction,
   * before anything is sent. Only the caller that still finds the row as it read it writes.
   */
  private async signAttempt(p: SolanaPayoutRow, from: "claimed" | "broadcast"): Promise<StepResult> {
    const rpc = this.rpcs.get(p.network)!;
    const w = await this.withdrawal(p.withdrawal_id);
    if (!w || w.status !== "processing") return "retry";
    const state = await networkState(this.db, p.network);
    // Paused by an operator: nothing new is signed (what was signed is still sent and tracked).
    if (state.paused && state.pausedBy !== "runway") return "wait";
    const keypair = await this.hotWallets.solanaKeypair(p.network);
    if (!keypair) {
      log("error", "alert: no solana hot wallet key for a configured network; chain payouts wait", { network: p.network });
      return "retry";
    }
    const amount = BigInt(p.amount);
    const to = new PublicKey(p.to_address!);
    let latest: { blockhash: string; lastValidBlockHeight: number };
    try {
      if (from === "claimed") {
        // A transfer that would leave a new account below the rent-exempt minimum fails on chain;
        // nothing is signed yet, so it fails here (the hold is released) instead of spending a fee.
        const [account, rentMinimum] = await rpc.call("getAccountInfo", async (c) => [await c.getAccountInfo(to, "confirmed"), await c.getMinimumBalanceForRentExemption(0, "confirmed")] as const);
        if (!account && amount < BigInt(rentMinimum)) {
          return this.failWithdrawal(p, "failed", "below_rent_exempt_minimum", `chain: below the ${rentMinimum}-lamport rent-exempt minimum of a new Solana account`);
        }
      }
      const balance = BigInt(await rpc.call("getBalance", (c) => c.getBalance(keypair.publicKey, "confirmed")));
      if (!(await this.runway(p, balance))) return "wait";
      latest = await rpc.call("getLatestBlockhash", (c) => c.getLatestBlockhash("confirmed"));
    } catch (error) {
      log("warn", "solana rpc did not answer while signing a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    const tx = new Transaction({ feePayer: keypair.publicKey, blockhash: latest.blockhash, lastValidBlockHeight: latest.lastValidBlockHeight });
    tx.add(SystemProgram.transfer({ fromPubkey: keypair.publicKey, toPubkey: to, lamports: amount }));
    tx.sign(keypair);
    const attempt: SolanaAttempt = {
      hash: base58.encode(tx.signature!),
      raw: tx.serialize().toString("base64"),
      blockhash: latest.blockhash,
      lastValidBlockHeight: String(latest.lastValidBlockHeight),
      kind: "payout",
      at: now(),
    };
    let stored = false;
    await this.db.begin(async (db) => {
      const [still] = await db`select status, jsonb_array_length(attempts) as n from chain_payouts where withdrawal_id = ${p.withdrawal_id} for update`;
      if (still?.status !== from || Number(still.n) !== p.attempts.length) return;
      await db`update chain_payouts set status = 'signed', from_address = ${keypair.publicKey.toBase58()}, tx_hash = ${attempt.hash}, raw_tx = ${attempt.raw},
          last_valid_block_height = ${attempt.lastValidBlockHeight}, attempts = attempts || ${db.json([attempt] as never)}::jsonb,
          block_number = null, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id}`;
      stored = true;
    });
    if (stored) crashPoint("chain.after_sign");
    return "done";
  }

  /**
   * Runway: the hot wallet must cover this payout, every other one signed and not final yet, and the
   * fee margin. Short, the network pauses (payouts wait, nothing fails) and an alert is raised; once
   * topped up, the runway's pause (never an operator's) is lifted.
   */
  private async runway(p: SolanaPayoutRow, balance: bigint): Promise<boolean> {
    const config = this.networks[p.network]!;
    const [pending] = await this.db`select coalesce(sum(amount), 0)::text as total from chain_payouts
      where network = ${p.network} and asset = 'SOL' and status in ('signed', 'broadcast') and withdrawal_id <> ${p.withdrawal_id}`;
    const needed = BigInt(p.amount) + BigInt(pending!.total as string) + config.runway.feeMarginLamports;
    await recordSeen(this.db, p.network, { hotBalance: balance });
    if (balance >= needed) {
      if (await resumeFromRunway(this.db, p.network)) log("info", "the solana hot wallet covers its payouts again; the network resumes", { network: p.network });
      return true;
    }
    if (await pauseForRunway(this.db, p.network, "hot wallet balance below pending payouts and fee margin")) {
      await raiseChainAlert(this.db, { rule: "hot_wallet_runway", subject: { kind: "network", id: p.network } }, "high", {
        network: p.network,
        balance: balance.toString(),
        needed: needed.toString(),
      });
    }
    return false;
  }

  /** What the chain says of every attempt: which landed, and whether none can land any more. */
  private async inspect(p: SolanaPayoutRow): Promise<Seen> {
    const rpc = this.rpcs.get(p.network)!;
    if (!p.attempts.length) return { landed: [], expired: true, blocksPast: 0n };
    // The finalized height first: a transaction that lands after this read is then seen by the
    // status read below, so "expired and not landed" is never concluded about one that landed.
    const finalizedHeight = BigInt(await rpc.call("getBlockHeight", (c) => c.getBlockHeight("finalized")));
    const statuses = await rpc.call("getSignatureStatuses", (c) => c.getSignatureStatuses(p.attempts.map((a) => a.hash), { searchTransactionHistory: true }));
    const landed = p.attempts.flatMap((attempt, i) => {
      const status = statuses.value[i];
      return status ? [{ attempt, status }] : [];
    });
    const lastValid = p.attempts.reduce((max, a) => (BigInt(a.lastValidBlockHeight) > max ? BigInt(a.lastValidBlockHeight) : max), 0n);
    return { landed, expired: landed.length === 0 && finalizedHeight > lastValid, blocksPast: finalizedHeight - lastValid };
  }

  /** One attempt landed: wait for `finalized`, then confirmed (or failed, when it ran with an error). */
  private async landed(p: SolanaPayoutRow, attempt: SolanaAttempt, status: SignatureStatus): Promise<StepResult> {
    await this.db`update chain_payouts set block_number = ${status.slot}, tx_hash = ${attempt.hash}, raw_tx = ${attempt.raw},
        last_valid_block_height = ${attempt.lastValidBlockHeight}, updated_at = now()
      where withdrawal_id = ${p.withdrawal_id} and status = 'broadcast'`;
    const finalized = status.confirmationStatus === "finalized" || (status.confirmationStatus === undefined && status.confirmations === null);
    if (!finalized) return "wait";
    let fee: bigint | null = null;
    try {
      const tx = await this.rpcs.get(p.network)!.call("getTransaction", (c) => c.getTransaction(attempt.hash, { commitment: "finalized", maxSupportedTransactionVersion: 0 }));
      if (tx?.meta) fee = BigInt(tx.meta.fee);
    } catch (error) {
      if (error instanceof SolanaRpcUnreachable) return "retry";
      log("warn", "solana rpc did not give a landed payout's fee; it is left unrecorded", { withdrawalId: p.withdrawal_id, error: reason(error) });
    }
    // The fee left the hot wallet whether the transfer ran or not: recorded (fee_wei) and booked once.
    if (fee !== null) await bookNetworkFee(this.db, { withdrawalId: p.withdrawal_id, network: p.network, nativeAsset: "SOL", feeMinor: fee, txHash: attempt.hash });
    if (status.err) {
      // Landed and failed: the fee is spent, the transfer is not, and these bytes can never run again.
      // Every earlier attempt had expired before this one was signed: nothing for it can land any more.
      return this.failWithdrawal(p, "failed", "transaction_failed", "chain: transaction failed");
    }
    await this.db`update chain_payouts set status = 'confirmed', operator_action = null, updated_at = now() where withdrawal_id = ${p.withdrawal_id} and status = 'broadcast'`;
    return "done";
  }

  /**
   * An operator's cancel: carried out only once nothing signed can land (never signed, or every
   * attempt expired unlanded); until then nothing more is sent. One that landed meanwhile is paid:
   * the cancel came too late and is cleared.
   */
  private async cancel(p: SolanaPayoutRow): Promise<StepResult> {
    let seen: Seen;
    try {
      seen = await this.inspect(p);
    } catch (error) {
      log("warn", "solana rpc did not answer while cancelling a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    if (seen.landed.length) {
      log("warn", "an operator's cancel came after the payout landed; it is tracked to the end instead", { withdrawalId: p.withdrawal_id });
      await this.db`update chain_payouts set operator_action = null, status = case when status in ('signed', 'parked') then 'broadcast' else status end,
          parked_from = null, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id} and operator_action = 'cancel'`;
      return "done";
    }
    if (!seen.expired) return "wait";
    return this.failWithdrawal(p, "cancelled", "cancelled_by_operator", "chain: cancelled by an operator");
  }

  /** "sent": a node took the bytes; "refused": a node answered no (tracking decides what follows); "retry": none answered. */
  private async send(p: SolanaPayoutRow, raw: string): Promise<"sent" | "refused" | "retry"> {
    const rpc = this.rpcs.get(p.network)!;
    try {
      await rpc.call("sendTransaction", (c) => c.sendRawTransaction(Buffer.from(raw, "base64"), { skipPreflight: true, maxRetries: 0 }));
      return "sent";
    } catch (error) {
      if (error instanceof SolanaRpcUnreachable) {
        log("warn", "solana rpc did not answer a broadcast; the same bytes will be sent again", { network: p.network, withdrawalId: p.withdrawal_id });
        return "retry";
      }
      log("warn", "a solana node refused a payout's transaction; its status and blockhash decide what follows", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "refused";
    }
  }
}

interface Seen {
  landed: { attempt: SolanaAttempt; status: SignatureStatus }[];
  /** No attempt landed and none can any more (the finalized height is past every attempt's last valid height). */
  expired: boolean;
  /** How far the finalized height is past the newest attempt's last valid height (negative: not yet). */
  blocksPast: bigint;
}

