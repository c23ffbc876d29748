import type Stripe from "stripe";
import type { Reply } from "../../actors/envelope";
import type { WalletMove } from "../../machines/deposit.events";
import type { WalletCommand } from "../../machines/wallet.events";
import { Backoff } from "../../lib/backoff";
import type { Db } from "../../lib/db";
import { log, reason } from "../../lib/log";
import type { DepositService } from "../api/deposit-service";
import { idFromKey } from "../api/ids";
import type { WalletService } from "../api/wallet-service";
import { classify, METADATA, refundKey } from "../integrations/stripe/client";
import { crashPoint } from "../crash";
import { toStripeAmount } from "../integrations/stripe/money";
import { EVERYTHING, mineOnly, type Ownership } from "./ownership";
import { Pump } from "./pump";

/**
 * Moves a card deposit's money, driven by the deposit actor's outbox (events marked
 * `deposit_pending`, committed with the decision that needs them, see actors/deposit-store.ts):
 *
 * - `credit`: the payment succeeded: system:stripe_clearing → wallet.
 * - `refund_debit`: a refund was asked for: the wallet pays it back from its available balance
 *   (refused: the deposit cancels the refund, Stripe never hears of it); then Stripe is asked, with
 *   the refund's id as Stripe's idempotency key; then its answer is reported to the deposit.
 * - `refund_force_debit`: a refund made at Stripe directly: wallet → clearing, into debt if spent.
 * - `refund_return`: a refund failed after the wallet paid it: clearing → wallet.
 * - `dispute_debit` / `dispute_return`: a dispute opened (or was found lost) / was won:
 *   wallet ⇄ system:stripe_disputes (the debit may leave the wallet in debt).
 *
 * Every step is keyed by its object and step (`deposit:<id>:credit`, `refund:<id>:debit`, …) and
 * books a journal whose id is derived from the same, so a step run twice (a crash, two nodes, the
 * API and this worker at once) has one effect. An event stays marked until its step has committed,
 * so a restart resumes where it stopped.
 */
interface SagaEvent {
  id: string;
  type: string;
  payload: {
    depositId: string;
    walletId: string;
    amount: string;
    move?: WalletMove;
    refundId?: string;
    disputeId?: string;
  };
}

const BATCH = 100;
/** A failed step waits 250 ms, then 500 ms… up to 30 s; money owed must arrive, so it is never given up (logged loudly past 10). */
const STEP_RETRY = { baseMs: 250, maxMs: 30_000, itemsMax: 10_000 };
const STEP_FAILURES_LOUD = 10;

/** The journal a step books: derived from the step, so the same step can never book a second one. */
export const stepJournalId = (step: string, objectId: string) => idFromKey("journal", step, objectId);

export class DepositSaga {
  private readonly pump: Pump;
  private readonly backoff = new Backoff(STEP_RETRY);
  /** Refunds this process is driving right now (the API drives a new one at once): the worker leaves them alone. */
  private readonly driving = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly wallets: WalletService,
    private readonly deposits: DepositService,
    private readonly stripe: Stripe | undefined,
    pollMs = 500,
    /** With several nodes: only the events of the deposits in the shards this node holds (src/workers/ownership.ts). */
    private readonly ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("deposit saga", () => this.pass(), pollMs);
  }

  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }

  /** Resolves true once no deposit step is pending (tests, shutdown). */
  idle(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => (await this.db`select count(*)::int as n from outbox where deposit_pending`)[0]!.n === 0, timeoutMs);
  }

  /**
   * Take a new refund's steps now, for the caller who asked for it (the API answers with where it
   * got to). The worker would take them too; both are keyed, so at most one effect either way.
   */
  async driveRefund(depositId: string, refundId: string): Promise<void> {
    this.driving.add(refundId);
    try {
      const [row] = await this.db`select id, type, payload from outbox
        where deposit_pending and aggregate_id = ${depositId} and type = 'deposit.refund.changed' and payload->>'refundId' = ${refundId}
        order by seq limit 1`;
      if (!row) return; // already done (a retried request), or the worker has it
      const event = row as unknown as SagaEvent;
      if (await this.step(event).catch(() => false)) await this.db`update outbox set deposit_pending = false where id = ${event.id}`;
    } finally {
      this.driving.delete(refundId);
    }
  }

  private async pass(): Promise<boolean> {
    const owned = mineOnly(this.db, this.ownership, "aggregate_id");
    if (!owned) return false; // no shard held here (yet)
    const resting = this.backoff.waiting();
    const events = (await this.db`select id, type, payload from outbox
      where deposit_pending and id <> all(${this.db.array(resting)}::uuid[]) ${owned} order by seq limit ${BATCH}`) as unknown as SagaEvent[];
    const mine = events.filter((e) => !(e.payload.refundId && this.driving.has(e.payload.refundId)));
    const done = (
      await Promise.all(
        mine.map(async (e) => {
          const ok = await this.step(e).catch((error) => {
            log("warn", "deposit saga step failed; will retry", { eventId: e.id, type: e.type, error: reason(error) });
            return false;
          });
          if (ok) this.backoff.succeeded(e.id);
          else {
            const { attempts, retryInMs } = this.backoff.failed(e.id);
            if (attempts >= STEP_FAILURES_LOUD) log("error", "deposit saga step keeps failing", { eventId: e.id, type: e.type, attempts, retryInMs });
          }
          return ok;
        }),
      )
    ).flatMap((ok, i) => (ok ? [mine[i]!.id] : []));
    if (done.length) await this.db`update outbox set deposit_pending = false where id in ${this.db(done)}`;
    return events.length === BATCH && done.length > 0;
  }

  /** Take one event's step; true once it has committed (or can never be taken: then an alert is logged). */
  private async step(event: SagaEvent): Promise<boolean> {
    const p = event.payload;
    const amount = BigInt(p.amount);
    const at = new Date().toISOString();
    const depositId = p.depositId;
    switch (p.move) {
      case "credit":
        crashPoint("deposit.before_credit");
        return this.wallet(p, `deposit:${depositId}:credit`, { type: "deposit.credit", depositId, journalId: stepJournalId("deposit.credit", depositId), amount, at });
      case "refund_debit":
        return this.refund(p.walletId, depositId, p.refundId!, amount);
      case "refund_force_debit":
        return this.wallet(p, `refund:${p.refundId}:debit`, {
          type: "deposit.refund.debit",
          depositId,
          refundId: p.refundId!,
          journalId: stepJournalId("deposit.refund.debit", p.refundId!),
          amount,
          force: true,
          at,
        });
      case "refund_return":
        return this.wallet(p, `refund:${p.refundId}:return`, {
          type: "deposit.refund.return",
          depositId,
          refundId: p.refundId!,
          journalId: stepJournalId("deposit.refund.return", p.refundId!),
          amount,
          at,
        });
      case "dispute_debit":
        return this.wallet(p, `dispute:${depositId}:${p.disputeId}:debit`, {
          type: "deposit.dispute.debit",
          depositId,
          disputeId: p.disputeId!,
          journalId: stepJournalId("deposit.dispute.debit", `${depositId}:${p.disputeId}`),
          amount,
          at,
        });
      case "dispute_return":
        return this.wallet(p, `dispute:${depositId}:${p.disputeId}:return`, {
          type: "deposit.dispute.return",
          depositId,
          disputeId: p.disputeId!,
          journalId: stepJournalId("deposit.dispute.return", `${depositId}:${p.disputeId}`),
          amount,
          at,
        });
      default:
        return true; // nothing to do (an event marked by an older version)
    }
  }

  /** A wallet step that must happen: done when booked; a definite refusal can never become a booking, so it is an alert. */
  private async wallet(p: SagaEvent["payload"], key: string, command: WalletCommand): Promise<boolean> {
    const reply = await this.wallets.system(p.walletId, key, command);
    if (reply.status < 300) return true;
    if (reply.status >= 500) return false;
    log("error", "alert: a card money step was refused by its wallet; an operator must settle it", {
      depositId: p.depositId,
      walletId: p.walletId,
      step: command.type,
      code: String(reply.body.code ?? ""),
    });
    return true;
  }

  /** A refund Coffer was asked for: the wallet pays it back, Stripe is asked, its answer reported. */
  private async refund(walletId: string, depositId: string, refundId: string, amount: bigint): Promise<boolean> {
    const at = () => new Date().toISOString();
    const debit = await this.wallets.system(walletId, `refund:${refundId}:debit`, {
      type: "deposit.refund.debit",
      depositId,
      refundId,
      journalId: stepJournalId("deposit.refund.debit", refundId),
      amount,
      force: false,
      at: at(),
    });
    if (debit.status >= 500) return false;
    if (debit.status >= 400) {
      // Spent, in debt, frozen or closed: the refund is dropped before Stripe hears of it.
      const canceled = await this.deposits.system(depositId, `refund:${refundId}:cancel`, { type: "deposit.refund.cancel", refundId, reason: String(debit.body.code ?? "REFUSED"), at: at() });
      return settled(canceled);
    }
    if (!this.stripe) return false; // (a node without Stripe cannot take this step; one with it will)
    const [deposit] = await this.db`select payment_intent_id from deposits where id = ${depositId}`;
    if (!deposit) return false;
    let refund: Stripe.Refund;
    try {
      refund = await this.stripe.refunds.create(
        { payment_intent: deposit.payment_intent_id, amount: toStripeAmount(amount), metadata: { [METADATA.depositId]: depositId, [METADATA.refundId]: refundId } },
        { idempotencyKey: refundKey(refundId) },
      );
    } catch (error) {
      const failure = classify(error);
      if (failure.kind !== "refused" && failure.kind !== "conflict") {
        log("warn", "stripe: creating a refund failed; will retry", { refundId, error: reason(error) });
        return false;
      }
      // Stripe will not make this refund (say the charge was refunded at Stripe meanwhile): it
      // failed, and the money the wallet paid back returns to it.
      const code = failure.kind === "refused" ? failure.code : "idempotency_conflict";
      log("warn", "stripe refused a refund; the wallet gets its money back", { refundId, code });
      return settled(await this.deposits.system(depositId, `refund:${refundId}:refused`, { type: "deposit.refund.report", refundId, amount, status: "failed", reason: code, at: at() }));
    }
    crashPoint("refund.after_stripe");
    const reported = await this.deposits.system(depositId, `refund:${refundId}:submitted`, {
      type: "deposit.refund.report",
      refundId,
      stripeRefundId: refund.id,
      amount,
      status: refundStatusOf(refund.status),
      ...(refund.failure_reason ? { reason: refund.failure_reason } : {}),
      at: at(),
    });
    return settled(reported);
  }
}

/** A deposit step's answer: taken (or already taken, or stale: INVALID_TRANSITION) unless the ledger did not answer. */
function settled(reply: Reply): boolean {
  return reply.status < 500;
}

/** Stripe's refund status as Coffer reports it (`requires_action` is still on its way). */
export function refundStatusOf(status: string | null | undefined): "pending" | "succeeded" | "failed" | "canceled" {
  return status === "succeeded" || status === "failed" || status === "canceled" ? status : "pending";
}
