import type { Reply } from "../../../actors/envelope";
import type { WalletCommand } from "../../../machines/wallet.events";
import type { Db } from "../../../lib/db";
import { isDatabaseUnavailable } from "../../../lib/db-errors";
import { delayMs } from "../../../lib/backoff";
import { log, reason } from "../../../lib/log";
import type { WalletService } from "../../api/wallet-service";
import type { Vault } from "../../security/encryption";
import { stepJournalId } from "../../workers/deposit-saga";
import { Pump } from "../../workers/pump";
import { HotWallets } from "../evm/hot-wallet";
import { raiseChainAlert } from "./alerts";
import type { ChainLimits } from "./limits";
import { withdrawalFee } from "./config";
import { networkState } from "./network-state";
import type { ChainWorkQueue, WorkOutcome } from "./work-queue";
import { readWithdrawal, type WithdrawalRow } from "../../workers/withdrawal-row";

/**
 * What every chain's payout worker shares (src/integrations/evm/payouts.ts, solana/payouts.ts): the
 * pass over open payouts (stepped here, or queued on JetStream when the node has NATS), one payout's
 * stages run until one waits, the claim, the completion, failing a withdrawal only once nothing
 * signed for it can land, parking, and stage failures counted with backoff into a dead letter. Each
 * chain adds its own stages (sign, broadcast, track) and what it looks at per network.
 *
 * `chain_payouts` is the truth; every change to a row is conditional on the status read, and every
 * wallet command is keyed, so several workers (nodes) may run over the same rows.
 */
export type ChainPayoutStatus = "claimed" | "signed" | "broadcast" | "confirmed" | "completed" | "failed" | "parked" | "dropped" | "cancelling" | "cancelled";
export type StepResult = "done" | "wait" | "retry";

/** What the shared part reads of a payout row. */
export interface PayoutRowBase {
  withdrawal_id: string;
  wallet_id: string;
  network: string;
  status: ChainPayoutStatus;
  attempts: unknown[];
  operator_action: "retry" | "cancel" | "replace" | null;
  parked_from: ChainPayoutStatus | null;
  stage_failures: number;
  /** The network's flat withdrawal fee kept from the withdrawal (the row's `amount` is what is sent). */
  withdrawal_fee: string;
}


export interface PayoutWorkerOptions {
  /** Request-time limits: a payout that fails without paying gives its amount back. */
  limits?: ChainLimits;
  /** Failures of one stage before it is parked with a dead letter. */
  stageFailuresMax?: number;
  /** Payouts stepped at once in a pass. */
  concurrency?: number;
  /** With NATS: the sweep queues work on JetStream and this node takes its share from there. */
  queue?: ChainWorkQueue;
  /**
   * With a queue on several nodes: whether this node sweeps now (the holder of the chain's
   * `chain-sweep-*` lease, src/workers/ownership.ts); every node still takes its share of the queue.
   */
  sweeps?: () => boolean;
}

/** A network as the shared part needs it. */
interface NetworkBase {
  assets: object;
  pendingAlertMinutes: number;
}

export const FINAL: ChainPayoutStatus[] = ["completed", "failed", "parked", "dropped", "cancelled"];
const OPEN_WITHDRAWAL = ["requested", "processing"];
/** The stage a row in this status is waiting for (dead letters and queue subjects name it). */
export const STAGE: Partial<Record<ChainPayoutStatus, string>> = { claimed: "sign", signed: "broadcast", broadcast: "track", cancelling: "track", confirmed: "complete" };
/** Rows looked at per pass, at most. */
const PASS_ROWS = 256;
/** Stages one step runs at most before it lets others have a turn. */
const STAGES_PER_STEP = 8;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;

/** A stage failed for a reason worth counting (a node refused, a bug): retried with backoff, then a dead letter. */
export class StageError extends Error {}

export abstract class ChainPayoutWorker<Row extends PayoutRowBase, Network extends NetworkBase> {
  private readonly pump: Pump;
  private readonly busy = new Set<string>();
  /** Payouts whose status changed in the last pass. */
  private moved = 0;
  private readonly stageFailuresMax: number;
  private readonly concurrency: number;
  readonly hotWallets: HotWallets;

  constructor(
    protected readonly db: Db,
    protected readonly wallets: WalletService,
    protected readonly vault: Vault,
    protected readonly networks: Record<string, Network>,
    name: string,
    pollMs: number,
    /**
     * With monitoring on, a new payout is claimed only once monitoring has read its request and
     * applied any hold it decided (as the Stripe payout worker does), so a `hold` rule parks it
     * before anything is signed.
     */
    private readonly afterMonitoring: boolean,
    protected readonly options: PayoutWorkerOptions,
  ) {
    this.hotWallets = new HotWallets(db, vault);
    this.stageFailuresMax = options.stageFailuresMax ?? 8;
    this.concurrency = options.concurrency ?? 32;
    // Another pass at once while payouts move on (a burst of requests drains without waiting pollMs between passes).
    this.pump = new Pump(name, () => this.pass().then(() => this.moved > 0), pollMs);
  }

  /** The row of this withdrawal's payout. */
  abstract row(withdrawalId: string): Promise<Row | undefined>;
  /** The stage the payout is ready for (`p` undefined: not claimed yet). */
  protected abstract stage(withdrawalId: string, p: Row | undefined): Promise<StepResult>;
  /** Per network each pass, before the payouts: leases, what the chain says, what to record. */
  protected abstract observe(network: string): Promise<void>;
  /** The destination as the chain writes it (EIP-55 for EVM), from the address checked at request time. */
  protected abstract chainAddress(address: string): string;
  /** The token contract or mint paying `asset` on `network` (null: the native coin). */
  protected abstract tokenOf(network: string, asset: string): string | null;

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

  /** Whether this worker pays `asset` on `network`. */
  carries(network: string, asset: string): boolean {
    const config = this.networks[network];
    return Boolean(config && (config.assets as Record<string, unknown>)[asset]);
  }

  /** One pass: each network looked at, then every open payout stepped (or queued). */
  async pass(): Promise<Record<string, StepResult>> {
    const names = Object.keys(this.networks);
    if (!names.length) return {};
    // One node sweeps (observes the networks, queues the work); the queue spreads the steps.
    if (this.options.queue && this.options.sweeps && !this.options.sweeps()) return {};
    const paused = new Set<string>();
    for (const name of names) {
      try {
        await this.observe(name);
        await this.alertPending(name);
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
      order by w.created_at limit ${PASS_ROWS}`) as unknown as { id: string; asset: string; network: string; status: ChainPayoutStatus | null; attempts: number; operator_action: string | null }[];
    const todo = rows.filter((r) => this.carries(r.network, r.asset) && !(r.status === null && paused.has(r.network)));
    const out: Record<string, StepResult> = {};
    const queue = this.options.queue;
    if (queue) {
      // Queued, not stepped here: whichever node takes the message steps it.
      for (const r of todo) {
        const status = r.status ?? "new";
        try {
          await queue.enqueue(r.network, (r.status && STAGE[r.status]) ?? "claim", r.id, status, `${r.id}:${status}:${r.attempts}:${r.operator_action ?? ""}`);
        } catch (error) {
          log("warn", "chain work could not be queued; the next sweep tries again", { withdrawalId: r.id, error: reason(error) });
          break;
        }
      }
      return out;
    }
    let next = 0;
    this.moved = 0;
    const run = async () => {
      while (next < todo.length) {
        const { id, status } = todo[next++]!;
        if (this.busy.has(id)) continue;
        this.busy.add(id);
        try {
          out[id] = await this.guarded(id);
          if ((await this.row(id))?.status !== (status ?? undefined)) this.moved++;
        } finally {
          this.busy.delete(id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, todo.length) }, run));
    return out;
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

  /** Every stage this withdrawal can take now, in order, until one waits or fails to answer. */
  async step(withdrawalId: string): Promise<StepResult> {
    for (let i = 0; i < STAGES_PER_STEP; i++) {
      const p = await this.row(withdrawalId);
      const result = await this.stage(withdrawalId, p);
      if (result !== "done") return result;
      const after = await this.row(withdrawalId);
      if (!after || FINAL.includes(after.status)) return "done";
      if (after.status === p?.status && after.attempts.length === p.attempts.length && after.operator_action === p.operator_action) return "wait";
    }
    return "wait";
  }

  /** A step, with its failures counted: backoff, then a dead letter past `stageFailuresMax`. */
  private async guarded(id: string): Promise<StepResult> {
    try {
      const result = await this.step(id);
      await this.db`update chain_payouts set stage_failures = 0 where withdrawal_id = ${id} and stage_failures > 0`;
      return result;
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
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
    const stage = STAGE[p.status] ?? p.status;
    if (failures < this.stageFailuresMax) {
      const wait = delayMs(failures, RETRY_BASE_MS, RETRY_MAX_MS);
      log("warn", "chain payout stage failed; will retry", { withdrawalId: id, stage, failures, retryInMs: wait, error: why });
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
        values (${Bun.randomUUIDv7()}, ${id}, ${p.network}, ${stage}, ${why.slice(0, 500)}, ${failures})`;
    });
    log("error", "alert: a chain payout stage kept failing; parked with a dead letter for an operator", { withdrawalId: id, stage, failures });
  }

  /** Stage 1: the row, then the wallet's `withdrawal.payout.send`. A paused network claims nothing new. */
  async claim(withdrawalId: string): Promise<StepResult> {
    const w = await this.withdrawal(withdrawalId);
    if (!w || w.status !== "requested") return "done";
    const network = w.destination.masked.network as string;
    if (!this.carries(network, w.asset)) return "done";
    if ((await networkState(this.db, network)).paused) return "wait";
    const hot = await this.hotWallets.address(network);
    if (!hot) {
      log("error", "alert: no hot wallet for a configured network; chain payouts wait", { network });
      return "retry";
    }
    // The address was checked when the withdrawal was requested (lib/addresses/), and the amount
    // against the fee (more than it), so something is always sent.
    const destination = this.vault.open<{ address: string }>(w.destination.sealed, w.id);
    const fee = withdrawalFee(this.networks, network, w.asset);
    const sent = BigInt(w.amount) - fee;
    if (sent <= 0n) {
      await this.park(w.id, "claimed", "amount_not_above_withdrawal_fee");
      return "done";
    }
    await this.db`insert into chain_payouts (withdrawal_id, wallet_id, network, asset, token, from_address, to_address, amount, withdrawal_fee, status)
      values (${w.id}, ${w.wallet_id}, ${network}, ${w.asset}, ${this.tokenOf(network, w.asset)}, ${hot}, ${this.chainAddress(destination.address)},
        ${sent.toString()}, ${fee.toString()}, 'claimed')
      on conflict (withdrawal_id) do nothing`;
    const told = await this.tell(w.wallet_id, w.id, `payout:${w.id}:send`, { type: "withdrawal.payout.send", withdrawalId: w.id, at: now() });
    if (told === "retry") return "retry";
    const after = await this.withdrawal(w.id);
    if (after?.status !== "processing") {
      // Cancelled (or held) first: nothing was signed, nothing will be.
      if (after && OPEN_WITHDRAWAL.includes(after.status)) return "retry";
      await this.setStatus(w.id, "claimed", "dropped");
      await this.options.limits?.releaseWithdrawal(w.id);
    }
    return "done";
  }

  /** Final: the wallet completes the withdrawal (keyed: once), then the row says so. */
  async complete(p: Row): Promise<StepResult> {
    const id = p.withdrawal_id;
    const told = await this.tell(p.wallet_id, id, `payout:${id}:complete`, {
      type: "withdrawal.payout.complete",
      withdrawalId: id,
      journalId: stepJournalId("withdrawal.payout.complete", id),
      ...(BigInt(p.withdrawal_fee) > 0n ? { feeMinor: BigInt(p.withdrawal_fee) } : {}),
      at: now(),
    });
    if (told === "retry") return "retry";
    const w = await this.withdrawal(id);
    if (w && OPEN_WITHDRAWAL.includes(w.status)) return "retry";
    await this.setStatus(id, "confirmed", "completed");
    return "done";
  }

  /**
   * The withdrawal fails (its hold released, keyed: once), then the row says so and the request-time
   * limits get the amount back. Only for a payout nothing signed for can land any more. The wallet is
   * told first: if it does not answer, the row stays where it was and the step runs again.
   */
  protected async failWithdrawal(p: Row, to: "failed" | "cancelled", why: string, sentence: string): Promise<StepResult> {
    const told = await this.tell(p.wallet_id, p.withdrawal_id, `payout:${p.withdrawal_id}:fail`, { type: "withdrawal.payout.fail", withdrawalId: p.withdrawal_id, reason: sentence, at: now() });
    if (told === "retry") return "retry";
    await this.db`update chain_payouts set status = ${to}, last_error = ${why}, operator_action = null, updated_at = now()
      where withdrawal_id = ${p.withdrawal_id} and status = ${p.status}`;
    await this.options.limits?.releaseWithdrawal(p.withdrawal_id);
    return "done";
  }

  protected async park(withdrawalId: string, from: ChainPayoutStatus, why: string): Promise<void> {
    log("error", "alert: a chain payout was parked; an operator must settle it", { withdrawalId, why });
    await this.db`update chain_payouts set status = 'parked', parked_from = ${from}, last_error = ${why}, operator_action = null, updated_at = now()
      where withdrawal_id = ${withdrawalId} and status = ${from}`;
  }

  protected async setStatus(withdrawalId: string, from: ChainPayoutStatus, to: ChainPayoutStatus): Promise<void> {
    await this.db`update chain_payouts set status = ${to}, updated_at = now() where withdrawal_id = ${withdrawalId} and status = ${from}`;
  }

  protected async tell(walletId: string, withdrawalId: string, key: string, command: WalletCommand): Promise<"ok" | "refused" | "retry"> {
    const reply: Reply = await this.wallets.system(walletId, key, command);
    if (reply.status >= 500) return "retry";
    if (reply.status < 300) return "ok";
    if (reply.body.code !== "INVALID_TRANSITION") {
      log("error", "alert: a chain payout step was refused by its wallet; an operator must settle it", { withdrawalId, step: command.type, code: String(reply.body.code ?? "") });
    }
    return "refused";
  }

  protected async withdrawal(id: string): Promise<WithdrawalRow | undefined> {
    return readWithdrawal(this.db, id);
  }

  /** Seed 002's alert: payouts sent longer ago than the network's `pendingAlertMinutes` and not final. */
  private async alertPending(network: string): Promise<void> {
    const minutes = this.networks[network]!.pendingAlertMinutes;
    const late = await this.db`select withdrawal_id, extract(epoch from now() - broadcast_at)::int as age_s from chain_payouts
      where network = ${network} and status in ('broadcast', 'cancelling') and broadcast_at < now() - ${minutes} * interval '1 minute'
      order by broadcast_at limit 20`;
    for (const r of late) {
      await raiseChainAlert(this.db, { rule: "payout_pending", subject: { kind: "payout", id: r.withdrawal_id as string } }, "medium", {
        network,
        pendingMinutes: Math.floor(Number(r.age_s) / 60),
      });
    }
  }
}

export function now(): string {
  return new Date().toISOString();
}
