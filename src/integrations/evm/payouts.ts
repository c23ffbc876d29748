import { Transaction, getAddress } from "ethers";
import type { Db } from "../../../lib/db";
import { log, reason } from "../../../lib/log";
import type { WalletService } from "../../api/wallet-service";
import type { Vault } from "../../security/encryption";
import { crashPoint } from "../../crash";
import { raiseChainAlert } from "../chain/alerts";
import type { EvmNetwork } from "../chain/config";
import { bookNetworkFee } from "../chain/fee-ledger";
import { networkState, pauseForRunway, recordSeen, resumeFromRunway } from "../chain/network-state";
import { ChainPayoutWorker, StageError, now, type ChainPayoutStatus, type PayoutWorkerOptions, type StepResult } from "../chain/payout-worker";
import { SignerLease } from "../chain/signer-lease";
import { decodeTransferLogs, encodeTransfer, readBalanceOf, type ReceiptLog } from "./erc20";
import { feeCeiling, loadFees, marketFees, replacementFees, storeFees, txFeeFields, type Fees, type StoredFees } from "./fees";
import { RpcClient, RpcError } from "./rpc";

/**
 * Chain payouts on the EVM networks of NETWORKS_FILE: native ETH and ERC-20 USDC withdrawals to
 * crypto destinations, paid from the network's hot wallet. One withdrawal, one row of
 * `chain_payouts` (the truth), one stage at a time; the wallet's withdrawal machine moves only
 * through its own transitions (`withdrawal.payout.send|complete|fail`, each keyed: once).
 *
 * 1. claim: the row (`claimed`), then the wallet marks the withdrawal sent (processing, hold kept).
 *    An owner's cancel that came first wins. A paused network claims nothing new.
 * 2. sign (check + sign): the network must not be paused and the hot wallet must cover the payout,
 *    what is pending and a fee margin (else the network pauses for runway: nothing fails, an alert
 *    is raised, it resumes by itself once topped up). The nonce is taken under `select … for update`
 *    on `chain_nonces` (never below the chain's pending nonce: a nonce someone else used from the hot
 *    wallet is reported as drift and skipped), by the one node holding the signer lease, and the raw
 *    bytes are stored with the row BEFORE anything is broadcast. After a crash the stored bytes are
 *    sent again, never a new nonce.
 * 3. broadcast: `eth_sendRawTransaction`; "already known" / "nonce too low" for our own hash is fine.
 * 4. track: every transaction signed for the payout's nonce (`attempts`: the payout, its fee
 *    replacements, an operator's cancellation) is looked for, until one is `confirmations` deep and
 *    its block still the chain's at that height. A receipt that went away (reorg) puts it back and the
 *    same bytes are sent again. Not mined `replaceAfterBlocks` after broadcast: replaced at the same
 *    nonce with every fee field +10% +1 wei (or the market's, if higher), up to the network's cap;
 *    past the cap it parks for an operator.
 * 5. complete: the wallet completes the withdrawal once, and the gas is booked
 *    (system:hot_wallets:<network> → system:network_fees:<network>).
 *
 * Failure rule: a withdrawal fails (hold released) only when no signed transaction for it can still
 * be mined: never signed, mined and reverted, or its nonce consumed by a final cancellation.
 * Anything uncertain parks (`parked`, `parked_from`, `last_error`) for an operator. An RPC that does
 * not answer changes nothing: the stage is tried again later. A stage that keeps failing otherwise is
 * retried with backoff, then parked with a dead letter (`chain_dlq`) saying why.
 */
export type { ChainPayoutStatus, StepResult };

export interface Attempt {
  hash: string;
  raw: string;
  kind: "payout" | "cancel";
  fees: StoredFees;
  at: string;
}

export interface ChainPayoutRow {
  withdrawal_id: string;
  wallet_id: string;
  network: string;
  asset: string;
  token: string | null;
  from_address: string;
  to_address: string | null;
  amount: string;
  status: ChainPayoutStatus;
  nonce: string | null;
  tx_hash: string | null;
  raw_tx: string | null;
  block_number: string | null;
  block_hash: string | null;
  attempts: Attempt[];
  broadcast_block: string | null;
  replacements: number;
  operator_action: "retry" | "cancel" | "replace" | null;
  parked_from: ChainPayoutStatus | null;
  stage_failures: number;
  withdrawal_fee: string;
}


export interface EvmPayoutOptions extends PayoutWorkerOptions {
  /** This node's name (NODE_ID): the signer lease's holder. */
  holder?: string;
}

const CANCEL_GAS = 21_000n;

export class EvmPayouts extends ChainPayoutWorker<ChainPayoutRow, EvmNetwork> {
  private readonly rpcs = new Map<string, RpcClient>();
  private readonly lease: SignerLease;

  constructor(
    db: Db,
    wallets: WalletService,
    vault: Vault,
    networks: Record<string, EvmNetwork>,
    pollMs = 2_000,
    afterMonitoring = false,
    options: EvmPayoutOptions = {},
  ) {
    super(db, wallets, vault, networks, "evm payouts", pollMs, afterMonitoring, options);
    this.lease = new SignerLease(db, options.holder ?? "local");
    for (const [name, n] of Object.entries(networks)) this.rpcs.set(name, new RpcClient(n.rpcUrls));
  }

  /** Stops stepping, then gives up the signer leases: another node signs at once instead of waiting out their 30 s. */
  override async stop(): Promise<void> {
    await super.stop();
    await this.lease.release().catch((error) => log("warn", "evm payouts: the signer lease was not released; it expires on its own", { error: reason(error) }));
  }

  protected chainAddress(address: string): string {
    return getAddress(address);
  }

  protected tokenOf(network: string, asset: string): string | null {
    return asset === "USDC" ? (this.networks[network]!.assets.USDC?.contract ?? null) : null;
  }


  protected async stage(withdrawalId: string, p: ChainPayoutRow | undefined): Promise<StepResult> {
    if (!p) return this.claim(withdrawalId);
    if (p.status === "parked" && p.operator_action) {
      // An operator asked for something on a parked payout: it goes back to its stage, which carries it out.
      // Never back to `claimed` once something was signed: that would sign again with a new nonce.
      await this.db`update chain_payouts set status = case when raw_tx is not null and coalesce(parked_from, 'claimed') = 'claimed' then 'signed' else coalesce(parked_from, 'claimed') end,
          last_error = null, stage_failures = 0, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id} and status = 'parked'`;
      return "done";
    }
    if (p.operator_action === "cancel" && p.status === "claimed") return this.cancelUnsigned(p);
    switch (p.status) {
      case "claimed":
        return this.sign(p);
      case "signed":
        if (p.operator_action === "cancel") return this.replace(p, "cancel");
        return this.broadcast(p);
      case "broadcast":
      case "cancelling":
        return this.track(p);
      case "confirmed":
        return this.complete(p);
      default:
        return "done";
    }
  }

  /** An operator cancelled a payout nothing was signed for: it fails, its hold is released. */
  private async cancelUnsigned(p: ChainPayoutRow): Promise<StepResult> {
    return this.failWithdrawal(p, "failed", "cancelled_by_operator", "chain: cancelled by an operator before anything was signed");
  }

  /** Stage 2: runway, nonce, fees, signature; the raw bytes stored before any broadcast. */
  async sign(p: ChainPayoutRow): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    const w = await this.withdrawal(p.withdrawal_id);
    if (!w || w.status !== "processing") return "retry";
    // Paused by an operator: nothing new is signed. Paused for runway: the check below may lift it.
    const state = await networkState(this.db, p.network);
    if (state.paused && state.pausedBy !== "runway") return "wait";
    const amount = BigInt(p.amount);
    const call = p.token ? { from: p.from_address, to: p.token, value: "0x0", data: encodeTransfer(p.to_address!, amount) } : { from: p.from_address, to: p.to_address, value: toHex(amount), data: "0x" };
    let fees: Fees;
    let gasLimit: bigint;
    let pendingNonce: bigint;
    let nativeBalance: bigint;
    let tokenBalance: bigint | undefined;
    try {
      fees = await marketFees(rpc, config);
      nativeBalance = BigInt(await rpc.call<string>("eth_getBalance", [p.from_address, "latest"]));
      if (p.token) tokenBalance = await readBalanceOf(rpc, p.token, p.from_address);
      pendingNonce = BigInt(await rpc.call<string>("eth_getTransactionCount", [p.from_address, "pending"]));
      let estimate: bigint;
      try {
        estimate = BigInt(await rpc.call<string>("eth_estimateGas", [call]));
      } catch (error) {
        if (!(error instanceof RpcError)) throw error;
        // The node says this call would fail (a token balance short, a contract refusing): nothing signed.
        await this.park(p.withdrawal_id, "claimed", `gas_estimate_failed: ${error.message.slice(0, 200)}`);
        return "done";
      }
      const cap = BigInt(config.fees.gasLimitCap);
      if (estimate > cap) {
        // Nothing was signed: no transaction can be mined. Still, a destination that burns gas is an operator's call.
        await this.park(p.withdrawal_id, "claimed", `gas_estimate_over_cap:${estimate}`);
        return "done";
      }
      gasLimit = estimate + estimate / 5n > cap ? cap : estimate + estimate / 5n;
    } catch (error) {
      log("warn", "evm rpc did not answer while signing a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    if (feeCeiling(fees) > config.fees.maxFeePerGasCapWei) {
      log("warn", "evm fees are over the network's cap; payouts wait", { network: p.network, withdrawalId: p.withdrawal_id });
      return "wait";
    }
    const signer = await this.hotWallets.signer(p.network);
    if (!signer) return "retry";
    if (!(await this.lease.acquire(p.network, p.from_address))) return "wait";
    const outcome = await this.db.begin(async (tx): Promise<"signed" | "short" | "lease" | "gone"> => {
      const [still] = await tx`select status from chain_payouts where withdrawal_id = ${p.withdrawal_id} for update`;
      if (still?.status !== "claimed") return "gone";
      if (!(await this.lease.holds(tx, p.network, p.from_address))) return "lease";
      await tx`insert into chain_nonces (network, address, next_nonce) values (${p.network}, ${p.from_address}, ${pendingNonce.toString()}) on conflict do nothing`;
      const [n] = await tx`select next_nonce::text as next_nonce from chain_nonces where network = ${p.network} and address = ${p.from_address} for update`;
      // Runway, under the nonce lock (so two signers cannot both spend the same margin): what the hot
      // wallet holds must cover this payout, everything signed and not yet mined, and the fee margin.
      const [pending] = await tx`select coalesce(sum(amount) filter (where token is null), 0)::text as native,
          coalesce(sum(amount) filter (where token is not null and token = ${p.token}), 0)::text as token,
          count(*)::int as count
        from chain_payouts where network = ${p.network} and block_number is null
          and (status in ('signed', 'broadcast', 'cancelling') or (status = 'parked' and raw_tx is not null))`; // a parked one's bytes may still be mined
      const feeBudget = feeCeiling(fees) * gasLimit * (BigInt(pending!.count as number) + 1n) + config.runway.feeMarginWei;
      const needNative = (p.token ? 0n : amount) + BigInt(pending!.native as string) + feeBudget;
      const needToken = p.token ? amount + BigInt(pending!.token as string) : 0n;
      if (nativeBalance < needNative || (tokenBalance !== undefined && tokenBalance < needToken)) return "short";
      let nonce = BigInt(n!.next_nonce as string);
      if (pendingNonce > nonce) {
        // Someone else sent from the hot wallet: their nonces are used. Skip past them, and say so.
        await recordSeen(tx, p.network, { chainNonce: pendingNonce, drift: `nonces ${nonce}..${pendingNonce - 1n} used by transactions Coffer did not sign; skipped` });
        log("error", "alert: nonce drift: the hot wallet sent transactions Coffer did not sign; their nonces were skipped", { network: p.network, from: nonce.toString(), to: (pendingNonce - 1n).toString() });
        nonce = pendingNonce;
      }
      const raw = await signer.signTransaction(
        Transaction.from({ chainId: BigInt(config.chainId), nonce: Number(nonce), to: call.to!, value: BigInt(call.value), gasLimit, data: call.data, ...txFeeFields(fees) }),
      );
      const hash = Transaction.from(raw).hash!;
      const attempt: Attempt = { hash, raw, kind: "payout", fees: storeFees(fees), at: now() };
      await tx`update chain_nonces set next_nonce = ${(nonce + 1n).toString()} where network = ${p.network} and address = ${p.from_address}`;
      await tx`update chain_payouts set status = 'signed', nonce = ${nonce.toString()}, raw_tx = ${raw}, tx_hash = ${hash},
          attempts = ${tx.json([attempt] as never)}, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id}`;
      return "signed";
    });
    if (outcome === "short") {
      await this.runwayShort(p.network, nativeBalance, tokenBalance, p);
      return "wait";
    }
    if (outcome !== "signed") return outcome === "lease" ? "wait" : "done";
    await resumeFromRunway(this.db, p.network);
    crashPoint("chain.after_sign");
    return "done";
  }

  /** Stage 3: the stored bytes, sent (again). */
  async broadcast(p: ChainPayoutRow): Promise<StepResult> {
    const rpc = this.rpcs.get(p.network)!;
    const sent = await this.send(rpc, p, p.raw_tx!, p.tx_hash!);
    if (sent === "sent") crashPoint("chain.after_broadcast");
    if (sent === "retry") return "retry";
    if (sent === "foreign") return this.nonceTaken(p);
    const head = await this.head(rpc);
    await this.db`update chain_payouts set status = 'broadcast', broadcast_block = ${head?.toString() ?? null}, broadcast_at = now(), updated_at = now()
      where withdrawal_id = ${p.withdrawal_id} and status = 'signed'`;
    return "done";
  }

  /** Stage 4: the receipt of any attempt, until deep enough; a vanished one (reorg) sends the bytes again. */
  async track(p: ChainPayoutRow): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    try {
      let mined: { attempt: Attempt; receipt: Receipt } | undefined;
      for (const attempt of [...p.attempts].reverse()) {
        const receipt = await rpc.call<Receipt | null>("eth_getTransactionReceipt", [attempt.hash]);
        if (receipt) {
          mined = { attempt, receipt };
          break;
        }
      }
      if (!mined) {
        if (p.block_hash) {
          log("warn", "a chain payout's transaction left the chain (reorg); sending the same bytes again", { withdrawalId: p.withdrawal_id, network: p.network });
          await this.db`update chain_payouts set block_number = null, block_hash = null, updated_at = now() where withdrawal_id = ${p.withdrawal_id}`;
        }
        if (p.operator_action === "replace" || p.operator_action === "cancel") return this.replace(p, p.operator_action === "cancel" ? "cancel" : "payout");
        const head = await this.head(rpc);
        if (head !== undefined && p.broadcast_block !== null && head - BigInt(p.broadcast_block) >= BigInt(config.fees.replaceAfterBlocks)) {
          // Only a transaction the chain could mine next is stuck on its fees; one behind an earlier
          // nonce of ours just waits for it (raising its fees would change nothing).
          const next = BigInt(await rpc.call<string>("eth_getTransactionCount", [p.from_address, "latest"]));
          if (next === BigInt(p.nonce!)) return this.replace(p, p.status === "cancelling" ? "cancel" : "payout");
        }
        const newest = p.attempts[p.attempts.length - 1];
        const known = newest ? await rpc.call<unknown>("eth_getTransactionByHash", [newest.hash]) : null;
        if (!known && newest) {
          const sent = await this.send(rpc, p, newest.raw, newest.hash);
          if (sent === "retry") return "retry";
          if (sent === "foreign") return this.nonceTaken(p);
        }
        return "wait";
      }
      const { attempt, receipt } = mined;
      const blockNumber = BigInt(receipt.blockNumber);
      await this.db`update chain_payouts set block_number = ${blockNumber.toString()}, block_hash = ${receipt.blockHash}, tx_hash = ${attempt.hash}, raw_tx = ${attempt.raw}, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id}`;
      const head = BigInt(await rpc.call<string>("eth_blockNumber"));
      if (head - blockNumber + 1n < BigInt(config.confirmations)) return "wait";
      const block = await rpc.call<{ hash: string } | null>("eth_getBlockByNumber", [toHex(blockNumber), false]);
      if (!block || block.hash !== receipt.blockHash) return "wait"; // reorganised under us: look again
      const fee = BigInt(receipt.gasUsed) * BigInt(receipt.effectiveGasPrice ?? "0x0");
      const reverted = receipt.status !== "0x1";
      if (attempt.kind === "cancel" && !reverted) return this.cancelled(p, fee, attempt.hash);
      if (!reverted && p.token && !this.paidToken(p, receipt)) {
        await this.park(p.withdrawal_id, p.status, "token_transfer_not_in_receipt");
        return "done";
      }
      await this.db`update chain_payouts set gas_used = ${BigInt(receipt.gasUsed).toString()}, fee_wei = ${fee.toString()}, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id} and status = ${p.status}`;
      await bookNetworkFee(this.db, { withdrawalId: p.withdrawal_id, network: p.network, nativeAsset: "ETH", feeMinor: fee, txHash: attempt.hash });
      // Mined and reverted: the nonce is used, nothing can be mined for it any more.
      if (reverted) return this.failWithdrawal(p, "failed", "reverted", "chain: reverted");
      await this.db`update chain_payouts set status = 'confirmed', last_error = null, operator_action = null, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id} and status = ${p.status}`;
      return "done";
    } catch (error) {
      if (error instanceof RpcError) throw new StageError(`rpc: ${error.message}`);
      log("warn", "evm rpc did not answer while tracking a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
  }

  /**
   * A replacement at the same nonce, stored before it is sent: the payout again with higher fees, or
   * (an operator's cancel) a 0-value transfer to the hot wallet itself. Past the fee cap (unless an
   * operator asked) the payout parks instead; what was sent before may still be mined and is watched.
   */
  private async replace(p: ChainPayoutRow, kind: "payout" | "cancel"): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    const previous = p.attempts[p.attempts.length - 1];
    if (!previous || p.nonce === null) return "wait";
    let market: Fees;
    try {
      market = await marketFees(rpc, config);
    } catch (error) {
      log("warn", "evm rpc did not answer while replacing a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    const fees = replacementFees(loadFees(previous.fees), market);
    const byOperator = p.operator_action !== null;
    if (feeCeiling(fees) > config.fees.maxFeePerGasCapWei && !byOperator) {
      await this.park(p.withdrawal_id, p.status, `fee_cap_reached: ${feeCeiling(fees)} wei per gas is over the cap of ${config.fees.maxFeePerGasCapWei}`);
      return "done";
    }
    const signer = await this.hotWallets.signer(p.network);
    if (!signer || !(await this.lease.acquire(p.network, p.from_address))) return "wait";
    const old = Transaction.from(previous.raw);
    const tx =
      kind === "cancel"
        ? { to: p.from_address, value: 0n, data: "0x", gasLimit: CANCEL_GAS }
        : { to: old.to!, value: old.value, data: old.data, gasLimit: old.gasLimit };
    const raw = await signer.signTransaction(Transaction.from({ chainId: BigInt(config.chainId), nonce: Number(p.nonce), ...tx, ...txFeeFields(fees) }));
    const hash = Transaction.from(raw).hash!;
    const attempt: Attempt = { hash, raw, kind, fees: storeFees(fees), at: now() };
    const head = await this.head(rpc);
    const stored = await this.db.begin(async (t) => {
      const [still] = await t`select status, jsonb_array_length(attempts) as n from chain_payouts where withdrawal_id = ${p.withdrawal_id} for update`;
      if (still?.status !== p.status || Number(still.n) !== p.attempts.length) return false;
      if (!(await this.lease.holds(t, p.network, p.from_address))) return false;
      await t`update chain_payouts set attempts = attempts || ${t.json([attempt] as never)}, tx_hash = ${hash}, raw_tx = ${raw},
          replacements = replacements + 1, operator_action = null, broadcast_block = ${head?.toString() ?? null}, broadcast_at = now(),
          status = ${kind === "cancel" ? "cancelling" : p.status === "signed" ? "signed" : p.status}, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id}`;
      return true;
    });
    if (!stored) return "retry";
    log("info", kind === "cancel" ? "chain payout: cancellation sent at its nonce" : "chain payout: replaced with higher fees", {
      withdrawalId: p.withdrawal_id,
      network: p.network,
      replacements: p.replacements + 1,
    });
    const sent = await this.send(rpc, p, raw, hash);
    if (sent === "foreign") return this.nonceTaken(p);
    if (p.status === "signed") await this.setStatus(p.withdrawal_id, kind === "cancel" ? "cancelling" : "signed", kind === "cancel" ? "cancelling" : "broadcast");
    return sent === "retry" ? "retry" : "done";
  }

  /** The operator's cancellation is final at the payout's nonce: nothing for it can be mined any more. */
  private async cancelled(p: ChainPayoutRow, fee: bigint, hash: string): Promise<StepResult> {
    await bookNetworkFee(this.db, { withdrawalId: p.withdrawal_id, network: p.network, nativeAsset: "ETH", feeMinor: fee, txHash: hash });
    return this.failWithdrawal(p, "cancelled", "cancelled_by_operator", "chain: cancelled by an operator (a 0-value transaction took its nonce)");
  }

  /**
   * The payout's nonce went to a transaction none of its attempts is. When that is final (the chain's
   * nonce at `confirmations` deep is past it) none of ours can be mined any more, so the payout is
   * signed again with a new nonce: healed, never paid twice. Until then it waits.
   */
  private async nonceTaken(p: ChainPayoutRow): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    try {
      for (const a of p.attempts) if (await rpc.call<Receipt | null>("eth_getTransactionReceipt", [a.hash])) return "wait"; // ours after all
      const head = BigInt(await rpc.call<string>("eth_blockNumber"));
      const deep = head - BigInt(config.confirmations) + 1n;
      if (deep < 0n) return "wait";
      const finalNonce = BigInt(await rpc.call<string>("eth_getTransactionCount", [p.from_address, toHex(deep)]));
      if (finalNonce <= BigInt(p.nonce!)) return "wait";
    } catch (error) {
      log("warn", "evm rpc did not answer while checking a taken nonce; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    if (p.status === "cancelling") {
      // Cancelled by someone else's transaction: as final for this payout as our own cancellation.
      return this.cancelled(p, 0n, p.tx_hash!);
    }
    const reset = await this.db`update chain_payouts set status = 'claimed', nonce = null, raw_tx = null, tx_hash = null, block_number = null, block_hash = null,
        broadcast_block = null, last_error = ${`nonce ${p.nonce} was used by a transaction Coffer did not sign; signed again`}, updated_at = now()
      where withdrawal_id = ${p.withdrawal_id} and status = ${p.status} returning withdrawal_id`;
    if (reset.length) {
      await raiseChainAlert(this.db, { rule: "nonce_drift", subject: { kind: "network", id: p.network } }, "high", {
        network: p.network,
        nonce: p.nonce!,
        healed: "the payout was signed again with a new nonce",
      });
    }
    return "done";
  }

  async row(withdrawalId: string): Promise<ChainPayoutRow | undefined> {
    const [row] = await this.db`select withdrawal_id, wallet_id, network, asset, token, from_address, to_address, amount::text as amount, status,
        nonce::text as nonce, tx_hash, raw_tx, block_number::text as block_number, block_hash, attempts, broadcast_block::text as broadcast_block,
        replacements, operator_action, parked_from, stage_failures, withdrawal_fee::text as withdrawal_fee
      from chain_payouts where withdrawal_id = ${withdrawalId}`;
    return row as unknown as ChainPayoutRow | undefined;
  }

  /** Per network each pass: the signer lease, the head, the hot wallet's balance. */
  protected async observe(network: string): Promise<void> {
    const rpc = this.rpcs.get(network)!;
    const hot = await this.hotWallets.address(network);
    if (!hot) return;
    const leased = await this.lease.acquire(network, hot);
    let head: bigint | undefined;
    let balance: bigint | undefined;
    try {
      head = BigInt(await rpc.call<string>("eth_blockNumber"));
      balance = BigInt(await rpc.call<string>("eth_getBalance", [hot, "latest"]));
    } catch {
      // The node did not answer: nothing to record this pass.
    }
    if (head !== undefined) await recordSeen(this.db, network, { lastBlock: head, ...(balance !== undefined ? { hotBalance: balance } : {}) });
    if (leased && head !== undefined) await this.fillGap(network, hot);
  }

  /**
   * A gap the pipeline left: payouts signed for later nonces wait in the node's queue because the
   * nonce the chain expects next is held by no live payout (its payout was parked before its bytes
   * were broadcast, or its row is gone). Filled with a 0-value transfer from the hot wallet to itself
   * at that nonce, so the payouts behind it go through; the parked payout, if any, can then never be
   * mined with its old bytes, and is signed again with a new nonce when an operator retries it.
   */
  private async fillGap(network: string, hot: string): Promise<void> {
    const config = this.networks[network]!;
    const rpc = this.rpcs.get(network)!;
    let latest: bigint;
    let fees: Fees;
    try {
      latest = BigInt(await rpc.call<string>("eth_getTransactionCount", [hot, "latest"]));
      const pending = BigInt(await rpc.call<string>("eth_getTransactionCount", [hot, "pending"]));
      if (pending !== latest) return; // something is pending at the expected nonce: no gap
      const [behind] = await this.db`select 1 from chain_payouts where network = ${network} and from_address = ${hot} and nonce > ${latest.toString()}
        and status in ('signed', 'broadcast', 'cancelling') and block_number is null limit 1`;
      if (!behind) return;
      const [holder] = await this.db`select 1 from chain_payouts where network = ${network} and from_address = ${hot} and nonce = ${latest.toString()}
        and status in ('signed', 'broadcast', 'cancelling', 'confirmed') limit 1`;
      if (holder) return; // its own stage sends it again
      fees = await marketFees(rpc, config);
    } catch (error) {
      log("warn", "evm rpc did not answer while looking for a nonce gap; will look again", { network, error: reason(error) });
      return;
    }
    const signer = await this.hotWallets.signer(network);
    if (!signer) return;
    const raw = await signer.signTransaction(Transaction.from({ chainId: BigInt(config.chainId), nonce: Number(latest), to: hot, value: 0n, gasLimit: CANCEL_GAS, data: "0x", ...txFeeFields(fees) }));
    const hash = Transaction.from(raw).hash!;
    const stored = await this.db.begin(async (tx) => {
      if (!(await this.lease.holds(tx, network, hot))) return false;
      await recordSeen(tx, network, { drift: `nonce ${latest}: a gap the pipeline left (no live payout held it); filled with a 0-value self-send ${hash}` });
      return true;
    });
    if (!stored) return;
    log("error", "alert: a nonce gap held payouts back; filled with a 0-value self-send", { network, nonce: latest.toString() });
    try {
      await rpc.call("eth_sendRawTransaction", [raw]);
    } catch (error) {
      log("warn", "the gap filler was not accepted; the next pass looks again", { network, error: reason(error) });
    }
  }

  private async runwayShort(network: string, nativeBalance: bigint, tokenBalance: bigint | undefined, p: ChainPayoutRow): Promise<void> {
    const paused = await pauseForRunway(this.db, network, `the hot wallet cannot cover ${p.asset} payouts pending plus the fee margin`);
    if (paused) {
      await raiseChainAlert(this.db, { rule: "hot_wallet_runway", subject: { kind: "network", id: network } }, "high", {
        network,
        asset: p.asset,
        nativeBalanceWei: nativeBalance.toString(),
        ...(tokenBalance !== undefined ? { tokenBalanceMinor: tokenBalance.toString() } : {}),
        waitingPayoutMinor: p.amount,
      });
    }
  }

  /** Whether the receipt carries the token Transfer this payout is: from the hot wallet, to its address, its amount. */
  private paidToken(p: ChainPayoutRow, receipt: Receipt): boolean {
    const transfers = decodeTransferLogs({ logs: receipt.logs ?? [] }, p.token!);
    return transfers.some((t) => t.from === getAddress(p.from_address) && t.to === getAddress(p.to_address!) && t.amountMinor === BigInt(p.amount));
  }

  private async head(rpc: RpcClient): Promise<bigint | undefined> {
    try {
      return BigInt(await rpc.call<string>("eth_blockNumber"));
    } catch {
      return undefined;
    }
  }

  /** "sent": the node has it (or had it); "foreign": its nonce went to another transaction; "retry": no answer. */
  private async send(rpc: RpcClient, p: ChainPayoutRow, raw: string, hash: string): Promise<"sent" | "foreign" | "retry"> {
    try {
      await rpc.call("eth_sendRawTransaction", [raw]);
      return "sent";
    } catch (error) {
      if (!(error instanceof RpcError)) {
        log("warn", "evm broadcast got no answer; the same bytes will be sent again", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
        return "retry";
      }
      const message = error.message.toLowerCase();
      if (message.includes("already known") || message.includes("already imported") || message.includes("known transaction")) return "sent";
      if (message.includes("nonce too low") || message.includes("nonce has already been used")) {
        try {
          const hashes = [hash, ...p.attempts.map((a) => a.hash)];
          for (const h of hashes) if (await rpc.call<unknown>("eth_getTransactionByHash", [h])) return "sent";
          return "foreign";
        } catch {
          return "retry";
        }
      }
      throw new StageError(`broadcast refused by the node: ${error.message.slice(0, 300)}`);
    }
  }
}

interface Receipt {
  blockNumber: string;
  blockHash: string;
  status: string;
  gasUsed: string;
  effectiveGasPrice?: string;
  logs?: ReceiptLog[];
}

function toHex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

