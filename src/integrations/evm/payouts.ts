import { Transaction, getAddress } from "ethers";
import type { Reply } from "../../../actors/envelope";
import type { SealedDestination, WalletCommand } from "../../../machines/wallet.events";
import type { Db } from "../../../lib/db";
import { isDatabaseUnavailable } from "../../../lib/db-errors";
import { delayMs } from "../../../lib/backoff";
import { log, reason } from "../../../lib/log";
import type { WalletService } from "../../api/wallet-service";
import type { Vault } from "../../security/encryption";
import { crashPoint } from "../../crash";
import { stepJournalId } from "../../workers/deposit-saga";
import { Pump } from "../../workers/pump";
import { raiseChainAlert } from "../chain/alerts";
import type { EvmNetwork } from "../chain/config";
import { bookNetworkFee } from "../chain/fee-ledger";
import type { ChainLimits } from "../chain/limits";
import type { ChainWorkQueue, WorkOutcome } from "../chain/work-queue";
import { networkState, pauseForRunway, recordSeen, resumeFromRunway } from "../chain/network-state";
import { SignerLease } from "../chain/signer-lease";
import { decodeTransferLogs, encodeTransfer, readBalanceOf, type ReceiptLog } from "./erc20";
import { feeCeiling, loadFees, marketFees, replacementFees, storeFees, txFeeFields, type Fees, type StoredFees } from "./fees";
import { HotWallets } from "./hot-wallet";
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
export type ChainPayoutStatus = "claimed" | "signed" | "broadcast" | "confirmed" | "completed" | "failed" | "parked" | "dropped" | "cancelling" | "cancelled";
export type StepResult = "done" | "wait" | "retry";

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
}

interface WithdrawalRow {
  id: string;
  wallet_id: string;
  asset: string;
  amount: string;
  status: string;
  destination: SealedDestination;
}

export interface EvmPayoutOptions {
  /** This node's name (NODE_ID): the signer lease's holder. */
  holder?: string;
  /** Request-time limits: a payout that fails without paying gives its amount back. */
  limits?: ChainLimits;
  /** Failures of one stage before it is parked with a dead letter. */
  stageFailuresMax?: number;
  /** Steps run at once in a pass (signing is serialised by the nonce lock either way). */
  concurrency?: number;
  /** With NATS: the sweep queues work on JetStream and this node takes its share from there (src/integrations/chain/work-queue.ts). */
  queue?: ChainWorkQueue;
}

const OPEN = ["requested", "processing"];
const FINAL: ChainPayoutStatus[] = ["completed", "failed", "parked", "dropped", "cancelled"];
/** The stage a row in this status is waiting for (dead letters name it). */
const STAGE: Partial<Record<ChainPayoutStatus, string>> = { claimed: "sign", signed: "broadcast", broadcast: "track", cancelling: "track", confirmed: "complete" };
/** Rows looked at per pass, at most. */
const PASS_ROWS = 256;
/** Stage retry backoff. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;
const CANCEL_GAS = 21_000n;

/** A stage failed for a reason worth counting (the node refused, a bug): retried with backoff, then a dead letter. */
class StageError extends Error {}

export class EvmPayouts {
  private readonly pump: Pump;
  private readonly busy = new Set<string>();
  /** Payouts whose status changed in the last pass. */
  private moved = 0;
  private readonly rpcs = new Map<string, RpcClient>();
  private readonly lease: SignerLease;
  private readonly stageFailuresMax: number;
  private readonly concurrency: number;
  readonly hotWallets: HotWallets;

  constructor(
    private readonly db: Db,
    private readonly wallets: WalletService,
    private readonly vault: Vault,
    private readonly networks: Record<string, EvmNetwork>,
    pollMs = 2_000,
    /**
     * With monitoring on, a new payout is claimed only once monitoring has read its request and
     * applied any hold it decided (as the Stripe payout worker does), so a `hold` rule parks it
     * before anything is signed.
     */
    private readonly afterMonitoring = false,
    private readonly options: EvmPayoutOptions = {},
  ) {
    this.hotWallets = new HotWallets(db, vault);
    this.lease = new SignerLease(db, options.holder ?? "local");
    this.stageFailuresMax = options.stageFailuresMax ?? 8;
    this.concurrency = options.concurrency ?? 8;
    for (const [name, n] of Object.entries(networks)) this.rpcs.set(name, new RpcClient(n.rpcUrls));
    // Another pass at once while payouts move on (a burst of requests drains without waiting pollMs between passes).
    this.pump = new Pump("evm payouts", () => this.pass().then(() => this.moved > 0), pollMs);
  }

  kick(): void {
    this.pump.kick();
  }

  /** With a work queue: takes this node's share of the queued work (the sweep keeps queuing). */
  async start(): Promise<void> {
    const queue = this.options.queue;
    if (!queue) return;
    await queue.start();
    queue.consume((id, status) => this.work(id, status));
    this.kick();
  }

  async stop(): Promise<void> {
    await this.pump.stop();
    await this.options.queue?.stop();
  }

  /** One queued item: the payout's stages run; done once it has left `status` (the sweep queues what comes next). */
  async work(withdrawalId: string, status: string): Promise<WorkOutcome> {
    if (this.busy.has(withdrawalId)) return "wait";
    this.busy.add(withdrawalId);
    try {
      const result = await this.guarded(withdrawalId);
      const row = await this.row(withdrawalId);
      const now = row?.status ?? (status === "new" ? "new" : "gone");
      if (now !== status || FINAL.includes(now as ChainPayoutStatus)) return "done";
      return result === "retry" ? "retry" : "wait";
    } finally {
      this.busy.delete(withdrawalId);
    }
  }

  /** One pass: each network looked at (lease, head, balance, pending alerts), then every open payout stepped. */
  async pass(): Promise<Record<string, StepResult>> {
    const names = Object.keys(this.networks);
    if (!names.length) return {};
    const paused = new Set<string>();
    for (const name of names) {
      try {
        await this.observe(name);
        if ((await networkState(this.db, name)).paused) paused.add(name);
      } catch (error) {
        log("warn", "chain network check failed; will retry", { network: name, error: reason(error) });
      }
    }
    const assets = [...new Set(Object.values(this.networks).flatMap((n) => Object.keys(n.assets)))];
    const rows = (await this.db`select w.id, w.asset, w.destination->'masked'->>'network' as network, p.status,
        coalesce(jsonb_array_length(p.attempts), 0) as attempts, p.operator_action from withdrawals w
        left join chain_payouts p on p.withdrawal_id = w.id
      where w.asset = any(${this.db.array(assets)}::text[]) and w.destination->'masked'->>'type' = 'crypto'
        and w.destination->'masked'->>'network' = any(${this.db.array(names)}::text[])
        and ((p.withdrawal_id is null and w.status = 'requested' and (not ${this.afterMonitoring} or monitoring_cleared(w.id)))
          or (p.status in ('claimed', 'signed', 'broadcast', 'confirmed', 'cancelling') and p.next_attempt_at <= now())
          or (p.operator_action is not null and p.status not in ('completed', 'failed', 'dropped', 'cancelled')))
      order by w.created_at limit ${PASS_ROWS}`) as unknown as { id: string; asset: string; network: string; status: string | null; attempts: number; operator_action: string | null }[];
    const todo = rows.filter((r) => this.carries(r.network, r.asset) && !(r.status === null && paused.has(r.network)));
    const out: Record<string, StepResult> = {};
    const queue = this.options.queue;
    if (queue) {
      // Queued, not stepped here: whichever node takes the message steps it.
      for (const r of todo) {
        const status = r.status ?? "new";
        try {
          await queue.enqueue(r.network, STAGE[r.status as ChainPayoutStatus] ?? "claim", r.id, status, `${r.id}:${status}:${r.attempts}:${r.operator_action ?? ""}`);
        } catch (error) {
          log("warn", "chain work could not be queued; the next sweep tries again", { withdrawalId: r.id, error: reason(error) });
          break;
        }
      }
      return out;
    }
    let next = 0;
    const run = async () => {
      while (next < todo.length) {
        const { id } = todo[next++]!;
        if (this.busy.has(id)) continue;
        this.busy.add(id);
        try {
          out[id] = await this.guarded(id);
        } finally {
          this.busy.delete(id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, todo.length) }, run));
    return out;
  }

  /** A step, with its failures counted: backoff, then a dead letter past `stageFailuresMax`. */
  private async guarded(id: string): Promise<StepResult> {
    try {
      const result = await this.step(id);
      await this.db`update chain_payouts set stage_failures = 0 where withdrawal_id = ${id} and stage_failures > 0`;
      return result;
    } catch (error) {
      if (isDatabaseUnavailable(error) || !(error instanceof StageError || error instanceof Error)) {
        log("warn", "chain payout step failed; will retry", { withdrawalId: id, error: reason(error) });
        return "retry";
      }
      await this.failedStage(id, reason(error));
      return "retry";
    }
  }

  private async failedStage(id: string, why: string): Promise<void> {
    const p = await this.row(id);
    if (!p || FINAL.includes(p.status)) return;
    const failures = p.stage_failures + 1;
    if (failures < this.stageFailuresMax) {
      const wait = delayMs(failures, RETRY_BASE_MS, RETRY_MAX_MS);
      log("warn", "chain payout stage failed; will retry", { withdrawalId: id, stage: STAGE[p.status] ?? p.status, failures, retryInMs: wait, error: why });
      await this.db`update chain_payouts set stage_failures = ${failures}, last_error = ${why.slice(0, 500)},
          next_attempt_at = now() + ${wait} * interval '1 millisecond', updated_at = now()
        where withdrawal_id = ${id} and status = ${p.status}`;
      return;
    }
    await this.db.begin(async (tx) => {
      const parked = await tx`update chain_payouts set status = 'parked', parked_from = status, stage_failures = ${failures},
          last_error = ${why.slice(0, 500)}, updated_at = now()
        where withdrawal_id = ${id} and status = ${p.status} returning withdrawal_id`;
      if (!parked.length) return;
      await tx`insert into chain_dlq (id, withdrawal_id, network, stage, reason, attempts)
        values (${Bun.randomUUIDv7()}, ${id}, ${p.network}, ${STAGE[p.status] ?? p.status}, ${why.slice(0, 500)}, ${failures})`;
    });
    log("error", "alert: a chain payout stage kept failing; parked with a dead letter for an operator", { withdrawalId: id, stage: STAGE[p.status] ?? p.status, failures });
  }

  /** Every stage this withdrawal can take now, in order, until one waits or fails to answer. */
  async step(withdrawalId: string): Promise<StepResult> {
    for (let i = 0; i < 6; i++) {
      const p = await this.row(withdrawalId);
      const result = await this.stage(withdrawalId, p);
      if (result !== "done") return result;
      const after = await this.row(withdrawalId);
      if (!after || FINAL.includes(after.status)) return "done";
      if (after.status === p?.status && after.attempts.length === p.attempts.length && after.operator_action === p.operator_action) return "wait";
    }
    return "wait";
  }

  private async stage(withdrawalId: string, p: ChainPayoutRow | undefined): Promise<StepResult> {
    if (!p) return this.claim(withdrawalId);
    if (p.status === "parked" && p.operator_action) {
      // An operator asked for something on a parked payout: it goes back to its stage, which carries it out.
      await this.db`update chain_payouts set status = coalesce(parked_from, 'claimed'), last_error = null, stage_failures = 0, updated_at = now()
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

  /** Stage 1: the row, then the wallet's `withdrawal.payout.send`. */
  async claim(withdrawalId: string): Promise<StepResult> {
    const w = await this.withdrawal(withdrawalId);
    if (!w || w.status !== "requested") return "done";
    const network = w.destination.masked.network as string;
    const config = this.networks[network];
    if (!config || !this.carries(network, w.asset)) return "done";
    if ((await networkState(this.db, network)).paused) return "wait";
    const hot = await this.hotWallets.address(network);
    if (!hot) {
      log("error", "alert: no hot wallet for a configured network; chain payouts wait", { network });
      return "retry";
    }
    const destination = this.vault.open<{ address: string }>(w.destination.sealed, w.id);
    const token = w.asset === "USDC" ? config.assets.USDC!.contract : null;
    await this.db`insert into chain_payouts (withdrawal_id, wallet_id, network, asset, token, from_address, to_address, amount, status)
      values (${w.id}, ${w.wallet_id}, ${network}, ${w.asset}, ${token}, ${hot}, ${getAddress(destination.address)}, ${w.amount}, 'claimed')
      on conflict (withdrawal_id) do nothing`;
    const told = await this.tell(w.wallet_id, w.id, `payout:${w.id}:send`, { type: "withdrawal.payout.send", withdrawalId: w.id, at: now() });
    if (told === "retry") return "retry";
    const after = await this.withdrawal(w.id);
    if (after?.status !== "processing") {
      // Cancelled (or held) first: nothing was signed, nothing will be.
      if (after && OPEN.includes(after.status)) return "retry";
      await this.setStatus(w.id, "claimed", "dropped");
      await this.options.limits?.releaseWithdrawal(w.id);
      return "done";
    }
    return "done";
  }

  /** An operator cancelled a payout nothing was signed for: it fails, its hold is released. */
  private async cancelUnsigned(p: ChainPayoutRow): Promise<StepResult> {
    const told = await this.tell(p.wallet_id, p.withdrawal_id, `payout:${p.withdrawal_id}:fail`, {
      type: "withdrawal.payout.fail",
      withdrawalId: p.withdrawal_id,
      reason: "chain: cancelled by an operator before anything was signed",
      at: now(),
    });
    if (told === "retry") return "retry";
    await this.db`update chain_payouts set status = 'failed', operator_action = null, last_error = 'cancelled_by_operator', updated_at = now()
      where withdrawal_id = ${p.withdrawal_id} and status = 'claimed'`;
    await this.options.limits?.releaseWithdrawal(p.withdrawal_id);
    return "done";
  }

  /** Stage 2: runway, nonce, fees, signature; the raw bytes stored before any broadcast. */
  async sign(p: ChainPayoutRow): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    const w = await this.withdrawal(p.withdrawal_id);
    if (!w || w.status !== "processing") return "retry";
    if ((await networkState(this.db, p.network)).paused && !(await this.runwayCleared(p.network))) return "wait";
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
        from chain_payouts where network = ${p.network} and status in ('signed', 'broadcast', 'cancelling') and block_number is null`;
      const feeBudget = feeCeiling(fees) * gasLimit * (BigInt(pending!.count as number) + 1n) + config.runway.feeMarginWei;
      const needNative = (p.token ? 0n : amount) + BigInt(pending!.native as string) + feeBudget;
      const needToken = p.token ? amount + BigInt(pending!.token as string) : 0n;
      if (nativeBalance < needNative || (tokenBalance !== undefined && tokenBalance < needToken)) return "short";
      let nonce = BigInt(n!.next_nonce as string);
      if (pendingNonce > nonce) {
        // Someone else sent from the hot wallet: their nonces are used. Skip past them, and say so.
        await recordSeen(tx as unknown as Db, p.network, { chainNonce: pendingNonce, drift: `nonces ${nonce}..${pendingNonce - 1n} used by transactions Coffer did not sign; skipped` });
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
          return this.replace(p, p.status === "cancelling" ? "cancel" : "payout");
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
      const status: ChainPayoutStatus = reverted ? "failed" : "confirmed";
      await this.db`update chain_payouts set status = ${status}, gas_used = ${BigInt(receipt.gasUsed).toString()}, fee_wei = ${fee.toString()},
          last_error = ${reverted ? "reverted" : null}, operator_action = null, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id} and status = ${p.status}`;
      await bookNetworkFee(this.db, { withdrawalId: p.withdrawal_id, network: p.network, nativeAsset: "ETH", feeMinor: fee, txHash: attempt.hash });
      if (reverted) {
        // Mined and reverted: the nonce is used, nothing can be mined for it any more.
        const told = await this.tell(p.wallet_id, p.withdrawal_id, `payout:${p.withdrawal_id}:fail`, { type: "withdrawal.payout.fail", withdrawalId: p.withdrawal_id, reason: "chain: reverted", at: now() });
        if (told !== "retry") await this.options.limits?.releaseWithdrawal(p.withdrawal_id);
        return told === "retry" ? "retry" : "done";
      }
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
    const told = await this.tell(p.wallet_id, p.withdrawal_id, `payout:${p.withdrawal_id}:fail`, {
      type: "withdrawal.payout.fail",
      withdrawalId: p.withdrawal_id,
      reason: "chain: cancelled by an operator (a 0-value transaction took its nonce)",
      at: now(),
    });
    if (told === "retry") return "retry";
    await this.db`update chain_payouts set status = 'cancelled', operator_action = null, updated_at = now() where withdrawal_id = ${p.withdrawal_id} and status = ${p.status}`;
    await this.options.limits?.releaseWithdrawal(p.withdrawal_id);
    return "done";
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

  /** Final: the wallet completes the withdrawal (keyed: once), then the row says so. */
  async complete(p: ChainPayoutRow): Promise<StepResult> {
    const id = p.withdrawal_id;
    const told = await this.tell(p.wallet_id, id, `payout:${id}:complete`, {
      type: "withdrawal.payout.complete",
      withdrawalId: id,
      journalId: stepJournalId("withdrawal.payout.complete", id),
      at: now(),
    });
    if (told === "retry") return "retry";
    const w = await this.withdrawal(id);
    if (w && OPEN.includes(w.status)) return "retry";
    await this.setStatus(id, "confirmed", "completed");
    return "done";
  }

  async row(withdrawalId: string): Promise<ChainPayoutRow | undefined> {
    const [row] = await this.db`select withdrawal_id, wallet_id, network, asset, token, from_address, to_address, amount::text as amount, status,
        nonce::text as nonce, tx_hash, raw_tx, block_number::text as block_number, block_hash, attempts, broadcast_block::text as broadcast_block,
        replacements, operator_action, parked_from, stage_failures
      from chain_payouts where withdrawal_id = ${withdrawalId}`;
    return row as unknown as ChainPayoutRow | undefined;
  }

  /** Per network each pass: the signer lease, the head, the hot wallet's balance, and payouts pending too long. */
  private async observe(network: string): Promise<void> {
    const config = this.networks[network]!;
    const rpc = this.rpcs.get(network)!;
    const hot = await this.hotWallets.address(network);
    if (!hot) return;
    await this.lease.acquire(network, hot);
    let head: bigint | undefined;
    let balance: bigint | undefined;
    try {
      head = BigInt(await rpc.call<string>("eth_blockNumber"));
      balance = BigInt(await rpc.call<string>("eth_getBalance", [hot, "latest"]));
    } catch {
      // The node did not answer: nothing to record this pass.
    }
    if (head !== undefined) await recordSeen(this.db, network, { lastBlock: head, ...(balance !== undefined ? { hotBalance: balance } : {}) });
    const late = await this.db`select withdrawal_id, extract(epoch from now() - broadcast_at)::int as age_s from chain_payouts
      where network = ${network} and status in ('broadcast', 'cancelling') and broadcast_at < now() - ${config.pendingAlertMinutes} * interval '1 minute'
      order by broadcast_at limit 20`;
    for (const r of late) {
      await raiseChainAlert(this.db, { rule: "payout_pending", subject: { kind: "payout", id: r.withdrawal_id as string } }, "medium", {
        network,
        pendingMinutes: Math.floor(Number(r.age_s) / 60),
      });
    }
  }

  /** A paused network: true when only the runway paused it and it may be tried again (the sign stage checks it). */
  private async runwayCleared(network: string): Promise<boolean> {
    return (await networkState(this.db, network)).pausedBy === "runway";
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

  private carries(network: string, asset: string): boolean {
    const config = this.networks[network];
    return Boolean(config && (config.assets as Record<string, unknown>)[asset]);
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

  private async park(withdrawalId: string, from: ChainPayoutStatus, why: string): Promise<void> {
    log("error", "alert: a chain payout was parked; an operator must settle it", { withdrawalId, why });
    await this.db`update chain_payouts set status = 'parked', parked_from = ${from}, last_error = ${why}, operator_action = null, updated_at = now()
      where withdrawal_id = ${withdrawalId} and status = ${from}`;
  }

  private async setStatus(withdrawalId: string, from: ChainPayoutStatus, to: ChainPayoutStatus): Promise<void> {
    await this.db`update chain_payouts set status = ${to}, updated_at = now() where withdrawal_id = ${withdrawalId} and status = ${from}`;
  }

  private async tell(walletId: string, withdrawalId: string, key: string, command: WalletCommand): Promise<"ok" | "refused" | "retry"> {
    const reply: Reply = await this.wallets.system(walletId, key, command);
    if (reply.status >= 500) return "retry";
    if (reply.status < 300) return "ok";
    if (reply.body.code !== "INVALID_TRANSITION") {
      log("error", "alert: a chain payout step was refused by its wallet; an operator must settle it", { withdrawalId, step: command.type, code: String(reply.body.code ?? "") });
    }
    return "refused";
  }

  private async withdrawal(id: string): Promise<WithdrawalRow | undefined> {
    const [row] = await this.db`select id, wallet_id, asset, amount::text as amount, status, destination from withdrawals where id = ${id}`;
    return row as unknown as WithdrawalRow | undefined;
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

function now(): string {
  return new Date().toISOString();
}
