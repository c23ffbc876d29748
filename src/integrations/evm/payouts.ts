import { Transaction, getAddress } from "ethers";
import type { Reply } from "../../../actors/envelope";
import type { SealedDestination, WalletCommand } from "../../../machines/wallet.events";
import type { Db } from "../../../lib/db";
import { log, reason } from "../../../lib/log";
import type { WalletService } from "../../api/wallet-service";
import type { Vault } from "../../security/encryption";
import { stepJournalId } from "../../workers/deposit-saga";
import { Pump } from "../../workers/pump";
import type { EvmNetwork } from "../chain/config";
import { HotWallets } from "./hot-wallet";
import { RpcClient, RpcError } from "./rpc";

/**
 * Chain payouts, first slice: native ETH withdrawals to crypto destinations on the EVM networks of
 * NETWORKS_FILE, paid from that network's hot wallet. One withdrawal, one row of `chain_payouts`,
 * one step at a time:
 *
 * 1. claim: the row (`claimed`, the hot wallet and the destination address), then the wallet marks it
 *    sent (`withdrawal.payout.send`: processing, hold kept). An owner's cancel that came first wins.
 * 2. sign: the nonce is taken under `select … for update` on `chain_nonces` (initialised from the
 *    chain's pending nonce), the transaction is signed (EIP-1559 fees from the node, gas estimated
 *    and capped), and the raw bytes and hash are stored (`signed`) in that same transaction, BEFORE
 *    anything is broadcast. After a crash the stored bytes are sent again, never a new nonce.
 * 3. broadcast: `eth_sendRawTransaction`; "already known" / "nonce too low" for our own hash is fine.
 * 4. track: the receipt, until `confirmations` blocks deep, its block hash checked against the
 *    chain's block at that height; a receipt that went away (a reorg) puts it back to `broadcast`
 *    and the same bytes are sent again. Final: the withdrawal completes once
 *    (`withdrawal.payout.complete`, keyed) and the gas paid is recorded on the row (`fee_wei`).
 *
 * Failure rule: a withdrawal fails (hold released) only when no signed transaction for it can still
 * be mined: never signed, or mined and reverted. Anything uncertain parks (`parked`, `last_error`)
 * for an operator. An RPC that does not answer changes nothing: the step is tried again later.
 */
export type ChainPayoutStatus = "claimed" | "signed" | "broadcast" | "confirmed" | "completed" | "failed" | "parked" | "dropped";
export type StepResult = "done" | "wait" | "retry";

export interface ChainPayoutRow {
  withdrawal_id: string;
  wallet_id: string;
  network: string;
  from_address: string;
  to_address: string | null;
  amount: string;
  status: ChainPayoutStatus;
  nonce: string | null;
  tx_hash: string | null;
  raw_tx: string | null;
  block_number: string | null;
  block_hash: string | null;
}

interface WithdrawalRow {
  id: string;
  wallet_id: string;
  asset: string;
  amount: string;
  status: string;
  destination: SealedDestination;
}

const OPEN = ["requested", "processing"];
/** Gas a native transfer may take at most (a plain transfer is 21 000; a receiving contract a little more). */
const GAS_CAP = 100_000n;
/** Priority fee when the node suggests none. */
const DEFAULT_TIP = 1_000_000_000n;

export class EvmPayouts {
  private readonly pump: Pump;
  private readonly busy = new Set<string>();
  private readonly rpcs = new Map<string, RpcClient>();
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
  ) {
    this.hotWallets = new HotWallets(db, vault);
    for (const [name, n] of Object.entries(networks)) this.rpcs.set(name, new RpcClient(n.rpcUrls));
    this.pump = new Pump("evm payouts", () => this.pass().then(() => false), pollMs);
  }

  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }

  /** One pass over every open chain payout (and every new ETH withdrawal on a configured network). */
  async pass(): Promise<Record<string, StepResult>> {
    const names = Object.keys(this.networks);
    if (!names.length) return {};
    const rows = (await this.db`select w.id from withdrawals w
        left join chain_payouts p on p.withdrawal_id = w.id
      where w.asset = 'ETH' and w.destination->'masked'->>'type' = 'crypto'
        and w.destination->'masked'->>'network' = any(${this.db.array(names)}::text[])
        and ((p.withdrawal_id is null and w.status = 'requested' and (not ${this.afterMonitoring} or monitoring_cleared(w.id)))
          or p.status in ('claimed', 'signed', 'broadcast', 'confirmed'))
      order by w.created_at limit 64`) as unknown as { id: string }[];
    const out: Record<string, StepResult> = {};
    for (const { id } of rows) {
      if (this.busy.has(id)) continue;
      this.busy.add(id);
      try {
        out[id] = await this.step(id);
      } catch (error) {
        log("warn", "chain payout step failed; will retry", { withdrawalId: id, error: reason(error) });
        out[id] = "retry";
      } finally {
        this.busy.delete(id);
      }
    }
    return out;
  }

  /** Every stage this withdrawal can take now, in order, until one waits or fails to answer. */
  async step(withdrawalId: string): Promise<StepResult> {
    for (let i = 0; i < 6; i++) {
      const p = await this.row(withdrawalId);
      const result = await this.stage(withdrawalId, p);
      if (result !== "done") return result;
      const after = await this.row(withdrawalId);
      if (!after || ["completed", "failed", "parked", "dropped"].includes(after.status)) return "done";
      if (after.status === p?.status) return "wait";
    }
    return "wait";
  }

  private async stage(withdrawalId: string, p: ChainPayoutRow | undefined): Promise<StepResult> {
    if (!p) return this.claim(withdrawalId);
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

  /** Stage 1: the row, then the wallet's `withdrawal.payout.send`. */
  async claim(withdrawalId: string): Promise<StepResult> {
    const w = await this.withdrawal(withdrawalId);
    if (!w || w.status !== "requested") return "done";
    const network = w.destination.masked.network as string;
    const config = this.networks[network];
    if (!config) return "done";
    const hot = await this.hotWallets.address(network);
    if (!hot) {
      log("error", "alert: no hot wallet for a configured network; chain payouts wait", { network });
      return "retry";
    }
    const destination = this.vault.open<{ address: string }>(w.destination.sealed, w.id);
    const limit = config.assets.ETH?.limits?.perPayoutMaxMinor;
    const over = limit !== undefined && BigInt(w.amount) > limit;
    await this.db`insert into chain_payouts (withdrawal_id, wallet_id, network, from_address, to_address, amount, status, last_error)
      values (${w.id}, ${w.wallet_id}, ${network}, ${hot}, ${getAddress(destination.address)}, ${w.amount}, ${over ? "parked" : "claimed"}, ${over ? "over_per_payout_limit" : null})
      on conflict (withdrawal_id) do nothing`;
    if (over) {
      log("warn", "a chain payout over its network's per-payout limit was parked for an operator", { withdrawalId: w.id, network });
      return "done";
    }
    const told = await this.tell(w.wallet_id, w.id, `payout:${w.id}:send`, { type: "withdrawal.payout.send", withdrawalId: w.id, at: now() });
    if (told === "retry") return "retry";
    const after = await this.withdrawal(w.id);
    if (after?.status !== "processing") {
      // Cancelled (or held) first: nothing was signed, nothing will be.
      await this.setStatus(w.id, "claimed", after && OPEN.includes(after.status) ? "claimed" : "dropped");
      return after && OPEN.includes(after.status) ? "retry" : "done";
    }
    return "done";
  }

  /** Stage 2: nonce, fees, signature; the raw bytes stored before any broadcast. */
  async sign(p: ChainPayoutRow): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    const w = await this.withdrawal(p.withdrawal_id);
    if (!w || w.status !== "processing") return "retry";
    let fees: Fees;
    let gasLimit: bigint;
    let pendingNonce: bigint;
    try {
      fees = await this.fees(rpc, config);
      const estimate = BigInt(await rpc.call<string>("eth_estimateGas", [{ from: p.from_address, to: p.to_address, value: toHex(BigInt(p.amount)) }]));
      if (estimate > GAS_CAP) {
        // Nothing was signed: no transaction can be mined. Still, a destination that burns gas is an operator's call.
        await this.park(p.withdrawal_id, "claimed", `gas_estimate_over_cap:${estimate}`);
        return "done";
      }
      gasLimit = estimate + estimate / 5n > GAS_CAP ? GAS_CAP : estimate + estimate / 5n;
      pendingNonce = BigInt(await rpc.call<string>("eth_getTransactionCount", [p.from_address, "pending"]));
    } catch (error) {
      log("warn", "evm rpc did not answer while signing a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
    const signer = await this.hotWallets.signer(p.network);
    if (!signer) return "retry";
    await this.db.begin(async (tx) => {
      const [still] = await tx`select status from chain_payouts where withdrawal_id = ${p.withdrawal_id} for update`;
      if (still?.status !== "claimed") return;
      await tx`insert into chain_nonces (network, address, next_nonce) values (${p.network}, ${p.from_address}, ${pendingNonce.toString()}) on conflict do nothing`;
      const [n] = await tx`select next_nonce::text as next_nonce from chain_nonces where network = ${p.network} and address = ${p.from_address} for update`;
      const nonce = BigInt(n!.next_nonce as string);
      const unsigned = Transaction.from({
        chainId: BigInt(config.chainId),
        nonce: Number(nonce),
        to: p.to_address!,
        value: BigInt(p.amount),
        gasLimit,
        data: "0x",
        ...(fees.kind === "eip1559" ? { type: 2, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas } : { type: 0, gasPrice: fees.gasPrice }),
      });
      const raw = await signer.signTransaction(unsigned);
      const hash = Transaction.from(raw).hash!;
      await tx`update chain_nonces set next_nonce = ${(nonce + 1n).toString()} where network = ${p.network} and address = ${p.from_address}`;
      await tx`update chain_payouts set status = 'signed', nonce = ${nonce.toString()}, raw_tx = ${raw}, tx_hash = ${hash}, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id}`;
    });
    return "done";
  }

  /** Stage 3: the stored bytes, sent (again). */
  async broadcast(p: ChainPayoutRow): Promise<StepResult> {
    const rpc = this.rpcs.get(p.network)!;
    const sent = await this.send(rpc, p);
    if (sent === "retry") return "retry";
    if (sent === "foreign") {
      await this.park(p.withdrawal_id, p.status, "nonce_taken_by_another_transaction");
      return "done";
    }
    await this.setStatus(p.withdrawal_id, "signed", "broadcast");
    return "done";
  }

  /** Stage 4: the receipt, until deep enough; a vanished one (reorg) sends the same bytes again. */
  async track(p: ChainPayoutRow): Promise<StepResult> {
    const config = this.networks[p.network]!;
    const rpc = this.rpcs.get(p.network)!;
    try {
      const receipt = await rpc.call<Receipt | null>("eth_getTransactionReceipt", [p.tx_hash]);
      if (!receipt) {
        if (p.block_hash) {
          log("warn", "a chain payout's transaction left the chain (reorg); sending the same bytes again", { withdrawalId: p.withdrawal_id, network: p.network });
          await this.db`update chain_payouts set block_number = null, block_hash = null, updated_at = now() where withdrawal_id = ${p.withdrawal_id}`;
        }
        const known = await rpc.call<unknown>("eth_getTransactionByHash", [p.tx_hash]);
        if (!known) {
          const sent = await this.send(rpc, p);
          if (sent === "retry") return "retry";
          if (sent === "foreign") {
            await this.park(p.withdrawal_id, "broadcast", "nonce_taken_by_another_transaction");
            return "done";
          }
        }
        return "wait";
      }
      const blockNumber = BigInt(receipt.blockNumber);
      await this.db`update chain_payouts set block_number = ${blockNumber.toString()}, block_hash = ${receipt.blockHash}, updated_at = now() where withdrawal_id = ${p.withdrawal_id}`;
      const head = BigInt(await rpc.call<string>("eth_blockNumber"));
      if (head - blockNumber + 1n < BigInt(config.confirmations)) return "wait";
      const block = await rpc.call<{ hash: string } | null>("eth_getBlockByNumber", [toHex(blockNumber), false]);
      if (!block || block.hash !== receipt.blockHash) return "wait"; // reorganised under us: look again
      const fee = BigInt(receipt.gasUsed) * BigInt(receipt.effectiveGasPrice ?? "0x0");
      const status: ChainPayoutStatus = receipt.status === "0x1" ? "confirmed" : "failed";
      await this.db`update chain_payouts set status = ${status}, gas_used = ${BigInt(receipt.gasUsed).toString()}, fee_wei = ${fee.toString()},
          last_error = ${status === "failed" ? "reverted" : null}, updated_at = now()
        where withdrawal_id = ${p.withdrawal_id} and status = 'broadcast'`;
      if (status === "failed") {
        // Mined and reverted: the nonce is used, nothing can be mined for it any more.
        const told = await this.tell(p.wallet_id, p.withdrawal_id, `payout:${p.withdrawal_id}:fail`, { type: "withdrawal.payout.fail", withdrawalId: p.withdrawal_id, reason: "chain: reverted", at: now() });
        return told === "retry" ? "retry" : "done";
      }
      return "done";
    } catch (error) {
      log("warn", "evm rpc did not answer while tracking a payout; will retry", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
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
    const [row] = await this.db`select withdrawal_id, wallet_id, network, from_address, to_address, amount::text as amount, status,
        nonce::text as nonce, tx_hash, raw_tx, block_number::text as block_number, block_hash
      from chain_payouts where withdrawal_id = ${withdrawalId}`;
    return row as unknown as ChainPayoutRow | undefined;
  }

  /** "sent": the node has it (or had it); "foreign": its nonce went to another transaction; "retry": no answer. */
  private async send(rpc: RpcClient, p: ChainPayoutRow): Promise<"sent" | "foreign" | "retry"> {
    try {
      await rpc.call("eth_sendRawTransaction", [p.raw_tx]);
      return "sent";
    } catch (error) {
      const message = error instanceof RpcError ? error.message.toLowerCase() : "";
      if (message.includes("already known") || message.includes("already imported") || message.includes("known transaction")) return "sent";
      if (message.includes("nonce too low") || message.includes("nonce has already been used")) {
        try {
          const ours = await rpc.call<unknown>("eth_getTransactionByHash", [p.tx_hash]);
          return ours ? "sent" : "foreign";
        } catch {
          return "retry";
        }
      }
      log("warn", "evm broadcast failed; the same bytes will be sent again", { network: p.network, withdrawalId: p.withdrawal_id, error: reason(error) });
      return "retry";
    }
  }

  private async fees(rpc: RpcClient, config: EvmNetwork): Promise<Fees> {
    if (config.feeModel === "legacy") return { kind: "legacy", gasPrice: BigInt(await rpc.call<string>("eth_gasPrice")) };
    const block = await rpc.call<{ baseFeePerGas?: string }>("eth_getBlockByNumber", ["latest", false]);
    const base = BigInt(block.baseFeePerGas ?? "0x0");
    let tip = DEFAULT_TIP;
    try {
      tip = BigInt(await rpc.call<string>("eth_maxPriorityFeePerGas"));
    } catch (error) {
      if (!(error instanceof RpcError)) throw error;
    }
    return { kind: "eip1559", maxPriorityFeePerGas: tip, maxFeePerGas: base * 2n + tip };
  }

  private async park(withdrawalId: string, from: ChainPayoutStatus, why: string): Promise<void> {
    log("error", "alert: a chain payout was parked; an operator must settle it", { withdrawalId, why });
    await this.db`update chain_payouts set status = 'parked', last_error = ${why}, updated_at = now() where withdrawal_id = ${withdrawalId} and status = ${from}`;
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

type Fees = { kind: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { kind: "legacy"; gasPrice: bigint };

interface Receipt {
  blockNumber: string;
  blockHash: string;
  status: string;
  gasUsed: string;
  effectiveGasPrice?: string;
}

function toHex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

function now(): string {
  return new Date().toISOString();
}

