import { Backoff } from "../../lib/backoff";
import { log, reason } from "../../lib/log";
import type { Db } from "../../lib/db";
import type { Reply } from "../../actors/envelope";
import type { ChamaService } from "../api/chama-service";
import type { WalletService } from "../api/wallet-service";
import { newId } from "../api/ids";
import { EVERYTHING, mineOnly, type Ownership } from "./ownership";
import { Pump } from "./pump";

/**
 * Drives transfers A → B from the outbox: `transfer.reserved` (A's money is in transit) asks B to
 * credit; `transfer.credited` asks A to settle; if B refuses, A voids (transit → A). Each step is
 * keyed by transfer id, so running one twice (after a crash, or on two nodes) has one effect. An
 * event stays pending until its next step has committed, so a restart resumes where it stopped.
 *
 * A and B may be a wallet and a chama, in the same shape:
 * - a member's contribution, wallet → chama: the wallet's `transfer.reserved` (to a chama) asks the
 *   chama to take it (`chama.transfer.credit`, credited to the member); the chama's
 *   `chama.transfer.credited` asks the wallet to settle; if the chama refuses, the wallet voids.
 * - a chama withdrawal paid into a wallet, chama → wallet (its transfer id is the withdrawal's id):
 *   continuing it posted the money to transit (`chama.withdrawal.changed` to processing, into a
 *   wallet), which asks the wallet to credit (`transfer.credit` from the chama); the wallet's
 *   `transfer.credited` asks the chama to settle (the withdrawal completes); if the wallet refuses,
 *   the chama voids (transit → chama: the withdrawal fails, the money is available again).
 */
type SagaEvent =
  | {
      id: string;
      type: "transfer.reserved";
      payload: { transferId: string; walletId: string; toWalletId?: string; toChamaId?: string; memberId?: string; asset: string; amount: string };
    }
  | { id: string; type: "transfer.credited"; payload: { transferId: string; walletId: string; fromWalletId?: string; fromChamaId?: string } }
  | { id: string; type: "chama.transfer.credited"; payload: { transferId: string; chamaId: string; fromWalletId: string } }
  | { id: string; type: "chama.withdrawal.changed"; payload: { withdrawalId: string; chamaId: string; memberId: string; toWalletId: string; asset: string; amount: string } };

/** A step the receiver refused for good (a business refusal), as opposed to one to try again (5xx). */
const refused = (r: Reply) => r.status >= 400 && r.status < 500;
/** A settle or void that finds nothing to do: it was taken before (a replay that lost its key, or a late duplicate). */
const alreadyTaken = (r: Reply) => r.body.code === "INVALID_TRANSITION" || r.body.code === "WITHDRAWAL_NOT_FOUND";

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
    private readonly chamas: ChamaService,
    pollMs = 500,
    /** With several nodes: only the events of the shards this node holds (src/workers/ownership.ts). */
    private readonly ownership: Ownership = EVERYTHING,
  ) {
    this.pump = new Pump("transfer saga", () => this.pass(), pollMs);
  }

  /** Steps taken by this node (each committed next step once): what the cluster tests count. */
  stepsTaken = 0;

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
    const mine = mineOnly(this.db, this.ownership, "aggregate_id");
    if (!mine) return false; // no shard held here (yet): nothing of this node's to step
    const resting = this.backoff.waiting();
    const events = (await this.db`select id, type, payload from outbox
      where saga_pending and id <> all(${this.db.array(resting)}::uuid[]) ${mine} order by seq limit ${BATCH}`) as unknown as SagaEvent[];
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
    this.stepsTaken += done.length;
    return events.length === BATCH && done.length > 0;
  }

  /** Take the next step for one event; true when that step has committed (or was already taken). */
  private async step(event: SagaEvent): Promise<boolean> {
    const at = new Date().toISOString();
    switch (event.type) {
      case "transfer.reserved": {
        const p = event.payload;
        const credit =
          p.toChamaId !== undefined
            ? await this.chamas.system(p.toChamaId, `transfer:${p.transferId}:credit`, {
                type: "chama.transfer.credit",
                transferId: p.transferId,
                journalId: newId(),
                memberId: p.memberId!,
                fromWalletId: p.walletId,
                amount: BigInt(p.amount),
                at: this.chamas.now(),
              })
            : await this.ops.system(p.toWalletId!, `transfer:${p.transferId}:credit`, {
                type: "transfer.credit",
                transferId: p.transferId,
                journalId: newId(),
                fromWalletId: p.walletId,
                asset: p.asset,
                amount: BigInt(p.amount),
                at,
              });
        if (credit.status < 300) return true;
        if (!refused(credit)) return false;
        // B refused (frozen, closed, gone; a chama also when the owner is no longer a member): give A its money back.
        const voided = await this.ops.system(p.walletId, `transfer:${p.transferId}:void`, {
          type: "transfer.void",
          transferId: p.transferId,
          journalId: newId(),
          reason: String(credit.body.code ?? "REFUSED"),
          at,
        });
        return voided.status < 300 || alreadyTaken(voided);
      }
      case "transfer.credited": {
        const p = event.payload;
        const settled =
          p.fromChamaId !== undefined
            ? await this.chamas.system(p.fromChamaId, `transfer:${p.transferId}:settle`, { type: "chama.withdrawal.settle", withdrawalId: p.transferId, at: this.chamas.now() })
            : await this.ops.system(p.fromWalletId!, `transfer:${p.transferId}:settle`, { type: "transfer.settle", transferId: p.transferId, at });
        return settled.status < 300 || alreadyTaken(settled);
      }
      case "chama.transfer.credited": {
        const p = event.payload;
        const settled = await this.ops.system(p.fromWalletId, `transfer:${p.transferId}:settle`, { type: "transfer.settle", transferId: p.transferId, at });
        return settled.status < 300 || alreadyTaken(settled);
      }
      case "chama.withdrawal.changed": {
        const p = event.payload;
        const credit = await this.ops.system(p.toWalletId, `transfer:${p.withdrawalId}:credit`, {
          type: "transfer.credit",
          transferId: p.withdrawalId,
          journalId: newId(),
          fromChamaId: p.chamaId,
          toMemberId: p.memberId,
          asset: p.asset,
          amount: BigInt(p.amount),
          at,
        });
        if (credit.status < 300) return true;
        if (!refused(credit)) return false;
        // The wallet refused (frozen, closed): the withdrawal fails and the chama gets its money back.
        const voided = await this.chamas.system(p.chamaId, `transfer:${p.withdrawalId}:void`, {
          type: "chama.withdrawal.void",
          withdrawalId: p.withdrawalId,
          journalId: newId(),
          reason: String(credit.body.code ?? "REFUSED"),
          at: this.chamas.now(),
        });
        return voided.status < 300 || alreadyTaken(voided);
      }
    }
  }
}
