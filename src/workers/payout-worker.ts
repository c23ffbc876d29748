import type Stripe from "stripe";
import type { Reply } from "../../actors/envelope";
import type { WalletCommand } from "../../machines/wallet.events";
import { Backoff } from "../../lib/backoff";
import type { Db } from "../../lib/db";
import { log } from "../../lib/log";
import type { WalletService } from "../api/wallet-service";
import { classify, failureSummary, METADATA, payoutKey } from "../integrations/stripe/client";
import { crashPoint } from "../crash";
import { stripeCurrencyOf, isCardAsset, toStripeAmount } from "../integrations/stripe/money";
import type { Vault } from "../security/encryption";
import { stepJournalId } from "./deposit-saga";
import { EVERYTHING, mineOnly, type Ownership } from "./ownership";
import { Pump } from "./pump";
import { readWithdrawal, type WithdrawalRow } from "./withdrawal-row";

/**
 * Pays withdrawals out through Stripe, driven by the wallet's outbox: a withdrawal requested to a
 * destination Stripe holds is marked `payout_pending` in the commit that holds its amount
 * (actors/wallet-store.ts `needsPayout`). For each marked withdrawal, one step at a time:
 *
 * 1. `withdrawal_payouts` gets its row (`sending`) before anything else, so a withdrawal in
 *    `processing` with a row is this worker's, and one without was taken by a processor by hand.
 * 2. The wallet marks it sent (`withdrawal.payout.send`: requested → processing; the hold stays). An
 *    owner's cancel that came first wins, and nothing is sent.
 * 3. The destination is opened (it is sealed at rest, bound to the withdrawal's id) and Stripe is
 *    asked under the idempotency key `coffer-payout-<withdrawalId>`, with `coffer_withdrawal_id`
 *    and `coffer_wallet_id` in its metadata:
 *    - `bank_token` (`ba_…`, `btok_…`): `payouts.create({ amount, currency, destination })`;
 *    - `stripe_account` (`acct_…`): `transfers.create({ amount, currency, destination })`.
 *    Stripe down, timing out or answering 5xx: tried again later with the same key (one payout,
 *    however many tries, crashes and nodes). Stripe refusing it (no such account, a balance too
 *    small, …): the withdrawal fails, its hold released.
 * 4. What Stripe answered is recorded on the row, and the withdrawal ends when Stripe says so:
 *    a transfer has arrived once made (completed at once); a payout is completed on `payout.paid`
 *    and failed on `payout.failed` / `payout.canceled` (src/integrations/stripe/payout-events.ts,
 *    which records Stripe's word on the row and calls `settle`). Until then the worker looks at the
 *    payout at Stripe now and then (after 2 s, then backing off to 10 min), in case a webhook was
 *    lost. A payout the bank returns after it was paid gives the money back (`returned`).
 *
 * Every wallet step is keyed by withdrawal and step (`payout:<id>:send`, `…:complete`, `…:fail`,
 * `…:return`) and books a journal whose id is derived from the same, so the event handler and this
 * worker, two nodes, or a run after a crash, take each step once. The mark is cleared once the
 * withdrawal has ended.
 *
 * Bank details: opened here only, right before the Stripe call, and never logged, stored opened or
 * put in an error or event (Stripe's error messages may quote a destination: only their type and
 * code are logged).
 */
interface MarkedEvent {
  id: string;
  payload: { walletId: string; withdrawalId: string };
}


interface PayoutRow {
  withdrawal_id: string;
  kind: "payout" | "transfer";
  stripe_id: string | null;
  status: PayoutStatus;
  failure_code: string | null;
}

/** What the row says of the payout: not asked yet, at Stripe and on its way, or ended (refused: Stripe would not make it). */
export type PayoutStatus = "sending" | "pending" | "paid" | "failed" | "canceled" | "refused" | "dropped";

/** What a step came to: the withdrawal ended (clear the mark), Stripe's word is awaited, or something did not answer. */
type StepResult = "done" | "wait" | "retry";

const OPEN = ["requested", "processing"];
/**
 * Held by transaction monitoring (src/monitoring/): not paid, and not ended either. The mark stays,
 * the worker leaves it alone, and an admin's release makes it `requested` again (then it is paid as
 * any other); a rejection ends it.
 */
const HELD = "manual_review";
/** Withdrawals taken per pass at most (their steps run at once; each withdrawal's one at a time). */
const BATCH = 32;
/** Stripe or the ledger did not answer: 250 ms, 500 ms… up to 30 s; never given up (loud past 10). */
const RETRY = { baseMs: 250, maxMs: 30_000, itemsMax: 10_000 };
const FAILURES_LOUD = 10;
/** Waiting for Stripe to say a payout was paid: look again after 2 s, 4 s… then every 10 min. */
const WATCH = { baseMs: 2_000, maxMs: 600_000, itemsMax: 10_000 };

export class PayoutWorker {
  private readonly pump: Pump;
  private readonly retry = new Backoff(RETRY);
  private readonly watch = new Backoff(WATCH);
  /** Withdrawals whose step runs in this process right now: one at a time each. */
  private readonly busy = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly wallets: WalletService,
    private readonly vault: Vault,
    private readonly stripe: Stripe,
    pollMs = 500,
    /**
     * With monitoring on, a payout waits until monitoring has read its request and applied any hold
     * it decided (src/monitoring/worker.ts), so a `hold` rule parks it before any money is sent.
     */
    private readonly afterMonitoring = false,
    /** With several nodes: only the withdrawals of wallets in the shards this node holds (src/workers/ownership.ts). */
    private readonly ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("payout worker", () => this.pass(), pollMs);
  }

  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }

  /** True once no withdrawal is marked at all: every payout ended (tests with payouts that settle by themselves). */
  idle(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => (await this.db`select count(*)::int as n from outbox where payout_pending`)[0]!.n === 0, timeoutMs);
  }

  /** True once every marked withdrawal has ended or waits for Stripe's word on a payout it made. */
  quiet(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => {
      const [row] = await this.db`select count(*)::int as n from outbox o
        left join withdrawal_payouts p on p.withdrawal_id = (o.payload->>'withdrawalId')::uuid
        where o.payout_pending and not (p.stripe_id is not null and p.status = 'pending')`;
      return row!.n === 0;
    }, timeoutMs);
  }

  private async pass(): Promise<boolean> {
    const owned = mineOnly(this.db, this.ownership, "aggregate_id");
    if (!owned) return false; // no shard held here (yet)
    const resting = [...this.retry.waiting(), ...this.watch.waiting()];
    const rows = (await this.db`select id, payload from outbox
      where payout_pending and id <> all(${this.db.array(resting)}::uuid[]) ${owned}
        and not exists (select 1 from withdrawals w where w.id = (outbox.payload->>'withdrawalId')::uuid and w.status = ${HELD})
        and (not ${this.afterMonitoring} or monitoring_cleared((outbox.payload->>'withdrawalId')::uuid))
      order by seq limit ${BATCH}`) as unknown as MarkedEvent[];
    const mine = rows.filter((r) => !this.busy.has(r.payload.withdrawalId));
    const results = await Promise.all(
      mine.map(async (row) => {
        const withdrawalId = row.payload.withdrawalId;
        this.busy.add(withdrawalId);
        let result: StepResult;
        try {
          result = await this.step(withdrawalId);
        } catch (error) {
          log("warn", "payout step failed; will retry", { withdrawalId, error: failureSummary(error) });
          result = "retry";
        } finally {
          this.busy.delete(withdrawalId);
        }
        if (result === "done") {
          this.retry.succeeded(row.id);
          this.watch.succeeded(row.id);
          await this.db`update outbox set payout_pending = false where id = ${row.id}`;
        } else if (result === "wait") {
          this.retry.succeeded(row.id);
          this.watch.failed(row.id);
        } else {
          const { attempts, retryInMs } = this.retry.failed(row.id);
          if (attempts >= FAILURES_LOUD) log("error", "payout step keeps failing", { withdrawalId, attempts, retryInMs });
        }
        return result === "done";
      }),
    );
    return rows.length === BATCH && results.some(Boolean);
  }

  /** One withdrawal's next step, from what the ledger and the row say. */
  private async step(withdrawalId: string): Promise<StepResult> {
    let w = await this.withdrawal(withdrawalId);
    if (!w) {
      log("error", "alert: a withdrawal marked for payout has no row", { withdrawalId });
      return "done";
    }
    if (w.status === HELD) return "retry"; // held since the query: the next passes skip it until released
    if (!OPEN.includes(w.status)) return this.ended(w);
    let p = await this.payoutRow(withdrawalId);
    if (!p) {
      if (w.status !== "requested") {
        // Started by a processor by hand (before Stripe paid out here): theirs to finish.
        log("warn", "a withdrawal marked for payout was already being processed by hand; left to its processor", { withdrawalId });
        return "done";
      }
      await this.db`insert into withdrawal_payouts (withdrawal_id, wallet_id, kind, status)
        values (${withdrawalId}, ${w.wallet_id}, ${kindOf(w.destination.masked.type ?? "")}, 'sending') on conflict (withdrawal_id) do nothing`;
      p = (await this.payoutRow(withdrawalId))!;
    }
    if (w.status === "requested" && p.status === "sending") {
      const sent = await this.tell(w, `payout:${withdrawalId}:send`, { type: "withdrawal.payout.send", withdrawalId, at: now() });
      if (sent === "retry") return "retry";
      w = (await this.withdrawal(withdrawalId))!;
      if (w.status === HELD) return "retry"; // held by monitoring first: nothing was sent
      if (!OPEN.includes(w.status)) return this.ended(w); // cancelled by its owner first: nothing was sent
    }
    if (p.status === "sending") {
      const made = await this.send(w, p);
      if (made !== "done") return made;
      p = (await this.payoutRow(withdrawalId))!;
    } else if (p.status === "pending" && p.stripe_id && p.kind === "payout") {
      // Stripe's word has not come (yet): ask.
      const looked = await this.look(p.stripe_id, withdrawalId);
      if (looked !== "done") return looked;
      p = (await this.payoutRow(withdrawalId))!;
    }
    return this.apply(w, p);
  }

  /**
   * Whatever the row says Stripe did, done to the wallet (the event handler records Stripe's word,
   * then calls this): paid → completed; failed, canceled or refused → failed (hold released), or
   * returned if it was completed already. Keyed, so any number of calls take each step once.
   */
  async settle(withdrawalId: string): Promise<"done" | "retry"> {
    const w = await this.withdrawal(withdrawalId);
    const p = await this.payoutRow(withdrawalId);
    if (!w || !p) return "done";
    const result = await this.apply(w, p);
    if (result === "retry") return "retry";
    const after = await this.withdrawal(withdrawalId);
    if (after && !OPEN.includes(after.status)) await this.clearMark(withdrawalId);
    return "done";
  }

  private async apply(w: WithdrawalRow, p: PayoutRow): Promise<StepResult> {
    const id = w.id;
    const open = OPEN.includes(w.status);
    switch (p.status) {
      case "paid":
        if (!open) return this.ended(w);
        return this.end(w, `payout:${id}:complete`, { type: "withdrawal.payout.complete", withdrawalId: id, journalId: stepJournalId("withdrawal.payout.complete", id), at: now() });
      case "failed":
      case "canceled":
      case "refused": {
        const reason = `stripe: ${p.failure_code ?? p.status}`;
        if (open) return this.end(w, `payout:${id}:fail`, { type: "withdrawal.payout.fail", withdrawalId: id, reason, at: now() });
        if (w.status === "completed") {
          return this.end(w, `payout:${id}:return`, {
            type: "withdrawal.payout.return",
            withdrawalId: id,
            journalId: stepJournalId("withdrawal.payout.return", id),
            amount: BigInt(w.amount),
            reason,
            at: now(),
          });
        }
        return "done";
      }
      case "pending":
        return open ? "wait" : this.ended(w);
      default:
        return open ? "wait" : "done";
    }
  }

  /** Pay it: open the destination, ask Stripe under the withdrawal's key, record the answer. */
  private async send(w: WithdrawalRow, p: PayoutRow): Promise<StepResult> {
    if (!isCardAsset(w.asset)) {
      log("error", "alert: a withdrawal of an asset Stripe does not pay out was marked for payout", { withdrawalId: w.id, asset: w.asset });
      await this.record(w.id, { status: "refused", failureCode: "asset_not_supported" });
      return "done";
    }
    const params = {
      amount: toStripeAmount(BigInt(w.amount)),
      currency: stripeCurrencyOf(w.asset),
      metadata: { [METADATA.withdrawalId]: w.id, [METADATA.walletId]: w.wallet_id },
    };
    let made: { id: string; status: PayoutStatus };
    try {
      // Opened here, used for this one call, and gone with it.
      const destination = this.vault.open<{ type: string; token?: string; account?: string }>(w.destination.sealed, w.id);
      if (p.kind === "transfer") {
        const transfer = await this.stripe.transfers.create({ ...params, destination: destination.account! }, { idempotencyKey: payoutKey(w.id) });
        made = { id: transfer.id, status: "paid" };
      } else {
        const payout = await this.stripe.payouts.create({ ...params, destination: destination.token! }, { idempotencyKey: payoutKey(w.id) });
        made = { id: payout.id, status: payoutStatusOf(payout.status) };
      }
    } catch (error) {
      const failure = classify(error);
      if (failure.kind === "refused") {
        log("warn", "stripe refused a payout; the withdrawal fails and its hold is released", { withdrawalId: w.id, code: failure.code });
        await this.record(w.id, { status: "refused", failureCode: failure.code.slice(0, 100) });
        return "done";
      }
      log(failure.kind === "unavailable" ? "warn" : "error", `stripe: paying a withdrawal out failed (${failure.kind}); will retry with the same key`, { withdrawalId: w.id, error: failureSummary(error) });
      return "retry";
    }
    crashPoint("payout.after_stripe");
    await this.record(w.id, { stripeId: made.id, status: made.status });
    return "done";
  }

  /** Stripe's word on a payout we are waiting for, asked directly (a webhook may have been lost). */
  private async look(payoutId: string, withdrawalId: string): Promise<StepResult> {
    let payout: Stripe.Payout;
    try {
      payout = await this.stripe.payouts.retrieve(payoutId);
    } catch (error) {
      log("warn", "stripe: reading a payout failed; will look again", { withdrawalId, error: failureSummary(error) });
      return "retry";
    }
    const status = payoutStatusOf(payout.status);
    if (status === "pending") return "wait";
    await this.record(withdrawalId, { status, failureCode: payout.failure_code ?? undefined });
    return "done";
  }

  /**
   * Stripe's word on a withdrawal's payout, recorded: its id (if not known yet: an event may come
   * before the create call's answer is recorded) and its status. A payout that failed stays failed
   * (a late `paid` does not undo it); a `sending` row takes whatever Stripe says.
   */
  async record(withdrawalId: string, o: { stripeId?: string; status: PayoutStatus; failureCode?: string | undefined }): Promise<void> {
    const ended = ["failed", "canceled", "refused"];
    await this.db`update withdrawal_payouts set
        stripe_id = coalesce(stripe_id, ${o.stripeId ?? null}),
        status = case when status = any(${this.db.array(ended)}::text[]) then status
                      when ${o.status} = 'pending' and status <> 'sending' then status
                      else ${o.status} end,
        failure_code = coalesce(${o.failureCode ?? null}, failure_code),
        updated_at = now()
      where withdrawal_id = ${withdrawalId}`;
  }

  /** A step that ends the withdrawal; done once the wallet took it (or it had ended already). */
  private async end(w: WithdrawalRow, key: string, command: WalletCommand): Promise<StepResult> {
    const told = await this.tell(w, key, command);
    if (told === "retry") return "retry";
    const after = await this.withdrawal(w.id);
    return after && OPEN.includes(after.status) ? "retry" : "done";
  }

  private async tell(w: WithdrawalRow, key: string, command: WalletCommand): Promise<"ok" | "refused" | "retry"> {
    const reply: Reply = await this.wallets.system(w.wallet_id, key, command);
    if (reply.status >= 500) return "retry";
    if (reply.status < 300) return "ok";
    if (reply.body.code !== "INVALID_TRANSITION") {
      log("error", "alert: a payout step was refused by its wallet; an operator must settle it", { withdrawalId: w.id, step: command.type, code: String(reply.body.code ?? "") });
    }
    return "refused";
  }

  /** The withdrawal has ended: the row says so too (a withdrawal cancelled before it was sent: `dropped`). */
  private async ended(w: WithdrawalRow): Promise<StepResult> {
    await this.db`update withdrawal_payouts set status = 'dropped', updated_at = now() where withdrawal_id = ${w.id} and status = 'sending'`;
    return "done";
  }

  private async clearMark(withdrawalId: string): Promise<void> {
    await this.db`update outbox set payout_pending = false where payout_pending and payload->>'withdrawalId' = ${withdrawalId}`;
  }

  private async withdrawal(id: string): Promise<WithdrawalRow | undefined> {
    return readWithdrawal(this.db, id);
  }

  private async payoutRow(withdrawalId: string): Promise<PayoutRow | undefined> {
    const [row] = await this.db`select withdrawal_id, kind, stripe_id, status, failure_code from withdrawal_payouts where withdrawal_id = ${withdrawalId}`;
    return row as unknown as PayoutRow | undefined;
  }
}

/** How Stripe pays a destination it holds: a payout to a bank account, a transfer to a connected account. */
export function kindOf(destinationType: string): "payout" | "transfer" {
  return destinationType === "stripe_account" ? "transfer" : "payout";
}

/** A Stripe payout's status as the row keeps it (`in_transit` is still on its way). */
export function payoutStatusOf(status: string | null | undefined): PayoutStatus {
  return status === "paid" || status === "failed" || status === "canceled" ? status : "pending";
}

function now(): string {
  return new Date().toISOString();
}
