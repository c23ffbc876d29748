import { Backoff } from "../../lib/backoff";
import { log, reason } from "../../lib/log";
import type { Db } from "../../lib/db";
import type { WalletService } from "../api/wallet-service";
import { newId } from "../api/ids";
import { Pump } from "./pump";

/**
 * Drives transfers A → B from the outbox: `transfer.reserved` (A's money is in transit) asks B to
 * credit; `transfer.credited` asks A to settle; if B refuses, A voids (transit → A). Each step is
 * keyed by transfer id, so running one twice (after a crash, or on two nodes) has one effect. An
 * event stays pending until its next step has committed, so a restart resumes where it stopped.
 */
interface SagaEvent {
  id: string;
  type: "transfer.reserved" | "transfer.credited";
  payload: { transferId: string; walletId: string; toWalletId?: string; fromWalletId?: string; asset: string; amount: string; at: string };
}

/** Events taken in one pass at most (their steps run at once). */
const BATCH = 200;
/**
 * A step that failed (503, database gone) is tried again after 250 ms, then 500 ms… up to 30 s,
 * and meanwhile left out of the passes, so failing events never crowd out the others. Money in
 * transit must arrive, so a step is never given up: past STEP_FAILURES_LOUD failures in a row it
 * is logged as an error for an operator.
 */
const STEP_RETRY = { baseMs: 250, maxMs: 30_000, itemsMax: 10_000 };
const STEP_FAILURES_LOUD = 10;

export class TransferSaga {
  private readonly pump: Pump;
  private readonly backoff = new Backoff(STEP_RETRY);

  constructor(
    private readonly db: Db,
    private readonly ops: WalletService,
    pollMs = 500,
  ) {
    this.pump = new Pump("transfer saga", () => this.pass(), pollMs);
  }

  /** Something was committed that may need a next step: look now rather than at the next poll. */
  kick(): void {
    this.pump.kick();
  }

  stop(): Promise<void> {
    return this.pump.stop();
  }

  /** Resolves once no saga step is pending (tests and shutdown use it). */
  idle(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => (await this.db`select count(*)::int as n from outbox where saga_pending`)[0]!.n === 0, timeoutMs);
  }

  /** One pass over pending events; true when a full batch was done (there may be more). */
  private async pass(): Promise<boolean> {
    const resting = this.backoff.waiting();
    const events = (await this.db`select id, type, payload from outbox
      where saga_pending and id <> all(${this.db.array(resting)}::uuid[]) order by seq limit ${BATCH}`) as unknown as SagaEvent[];
    const done = (
      await Promise.all(
        events.map(async (e) => {
          const ok = await this.step(e).catch((error) => {
            log("warn", "transfer saga step failed; will retry", { eventId: e.id, type: e.type, error: reason(error) });
            return false;
          });
          if (ok) {
            this.backoff.succeeded(e.id);
          } else {
            const { attempts, retryInMs } = this.backoff.failed(e.id);
            if (attempts >= STEP_FAILURES_LOUD) log("error", "transfer saga step keeps failing", { eventId: e.id, type: e.type, attempts, retryInMs });
          }
          return ok;
        }),
      )
    ).flatMap((ok, i) => (ok ? [events[i]!.id] : []));
    if (done.length) await this.db`update outbox set saga_pending = false where id in ${this.db(done)}`;
    return events.length === BATCH && done.length > 0;
  }

  /** Take the next step for one event; true when that step has committed (or was already taken). */
  private async step(event: SagaEvent): Promise<boolean> {
    const p = event.payload;
    const at = new Date().toISOString();
    if (event.type === "transfer.reserved") {
      const credit = await this.ops.system(p.toWalletId!, `transfer:${p.transferId}:credit`, {
        type: "transfer.credit",
        transferId: p.transferId,
        journalId: newId(),
        fromWalletId: p.walletId,
        asset: p.asset,
        amount: BigInt(p.amount),
        at,
      });
      if (credit.status < 300) return true;
      if (credit.status >= 500) return false;
      // B refused (frozen, closed, gone): give A its money back.
      const reason = String(credit.body.code ?? "REFUSED");
      const voided = await this.ops.system(p.walletId, `transfer:${p.transferId}:void`, {
        type: "transfer.void",
        transferId: p.transferId,
        journalId: newId(),
        reason,
        at,
      });
      return voided.status < 300 || voided.body.code === "INVALID_TRANSITION";
    }
    const settled = await this.ops.system(p.fromWalletId!, `transfer:${p.transferId}:settle`, { type: "transfer.settle", transferId: p.transferId, at });
    return settled.status < 300 || settled.body.code === "INVALID_TRANSITION";
  }
}
