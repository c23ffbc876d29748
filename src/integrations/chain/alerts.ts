import type { Db } from "../../../lib/db";
import { log } from "../../../lib/log";
import { raise, type Facts } from "../../monitoring/alerts";
import type { Severity } from "../../monitoring/rules";

/**
 * The chain payout pipeline's own alerts (a hot wallet short of runway, a payout pending too long,
 * a nonce someone else used), raised into the same alert table and lifecycle as monitoring's rules
 * (`GET /admin/alerts`), one per (rule, subject, window), each also an `alert.raised` event.
 */
export type ChainAlert =
  | { rule: "hot_wallet_runway"; subject: { kind: "network"; id: string } }
  | { rule: "nonce_drift"; subject: { kind: "network"; id: string } }
  | { rule: "payout_pending"; subject: { kind: "payout"; id: string } };

/** One alert per subject per hour: a network short for a day is 24 alerts at most, not one per pass. */
const WINDOW_MS = 60 * 60_000;

export async function raiseChainAlert(db: Db, alert: ChainAlert, severity: Severity, facts: Facts): Promise<void> {
  log("error", `alert: ${alert.rule}`, { subject: alert.subject.id, ...facts });
  await db.begin((tx) => raise(tx as unknown as Db, { rule: alert.rule, severity, subject: alert.subject, windowMs: WINDOW_MS, facts, at: new Date() }));
}
