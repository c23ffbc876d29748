import { parseArgs } from "node:util";
import { connect } from "../../lib/db";
import { redact } from "../../lib/redact";
import { loadConfig } from "../config";
import { startEmbeddedPostgres } from "../db/embedded";
import { stripeClient } from "../integrations/stripe/client";
import { reconcile, type ReconcileProgress } from "../ledger/reconcile";

/**
 * `bun run coffer reconcile [--since DATE]`: compare what Stripe reports with the ledger
 * (src/ledger/reconcile.ts). Progress goes to stderr as it works (when it starts, then at most a
 * line a second), then a summary; the report (differences, at most 1,000 listed, and the summary)
 * goes to stdout as JSON. Exit 0 when Stripe and the ledger agree, 1 when there is a difference,
 * 2 when it could not run (a bad argument, no Stripe key, Stripe or the database unreachable).
 *
 * Needs STRIPE_SECRET_KEY (and STRIPE_API_BASE for the stand-in) and DATABASE_URL (or the
 * embedded Postgres in COFFER_HOME), as the service does.
 */
export const RECONCILE_USAGE = "usage: bun run coffer reconcile [--since DATE]   (DATE: 2025-01-31, or an ISO-8601 time with its offset)";
const PROGRESS_EVERY_MS = 1_000;

export async function runReconcile(args: string[]): Promise<number> {
  let since: Date | undefined;
  try {
    const { values } = parseArgs({ args, options: { since: { type: "string" } }, strict: true });
    if (values.since !== undefined) {
      if (!/^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(values.since) || Number.isNaN(Date.parse(values.since))) {
        return usage(`--since must be a date (2025-01-31) or an ISO-8601 time with its offset`);
      }
      since = new Date(values.since);
    }
  } catch (error) {
    return usage((error as Error).message);
  }
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`reconcile: ${(error as Error).message}\n`);
    return 2;
  }
  if (!config.STRIPE_SECRET_KEY) {
    process.stderr.write("reconcile: Stripe is not configured (set STRIPE_SECRET_KEY, and STRIPE_API_BASE for the stand-in)\n");
    return 2;
  }
  const stripe = stripeClient({ secretKey: config.STRIPE_SECRET_KEY, webhookSecret: "", apiBase: config.STRIPE_API_BASE, timeoutMs: config.STRIPE_TIMEOUT_MS });
  const url = config.DATABASE_URL ?? (await startEmbeddedPostgres(config.COFFER_HOME, () => {})).url;
  const db = connect(url, 2, { statement_ms: 0, lock_ms: 5_000 });
  const started = performance.now();
  let lastAt: number | undefined;
  // The first report, then at most a line a second, whatever the stage: a long run says where it is.
  const progressLine = (p: ReconcileProgress) => {
    const now = performance.now();
    if (p.stage === "done" || (lastAt !== undefined && now - lastAt < PROGRESS_EVERY_MS)) return;
    lastAt = now;
    const l = p.listed;
    process.stderr.write(
      `reconcile: ${p.stage} · listed from Stripe: ${l.paymentIntents} PaymentIntents, ${l.refunds} refunds, ${l.disputes} disputes, ${l.payouts} payouts, ${l.transfers} transfers · differences ${p.differences} · ${((now - started) / 1000).toFixed(1)} s\n`,
    );
  };
  try {
    const report = await reconcile(db, stripe, { ...(since ? { since } : {}), onProgress: progressLine });
    const s = report.summary;
    const listed = report.differences.length < s.differences ? ` (${report.differences.length} listed)` : "";
    process.stderr.write(
      `reconcile: ${s.stripe.paymentIntents} PaymentIntents, ${s.stripe.refunds} refunds, ${s.stripe.disputes} disputes, ${s.stripe.payouts} payouts, ${s.stripe.transfers} transfers of Coffer's at Stripe; ` +
        `${s.coffer.deposits} deposits, ${s.coffer.withdrawals} withdrawals paid through Stripe in the ledger; ${s.inFlight} in flight${s.truncated ? "; TRUNCATED" : ""}; ` +
        `${s.differences} differences${listed} in ${(s.elapsedMs / 1000).toFixed(1)} s: ${report.ok ? "Stripe and the ledger agree" : "STRIPE AND THE LEDGER DISAGREE"}\n`,
    );
    console.log(JSON.stringify(report, null, 2));
    return report.ok ? 0 : 1;
  } catch (error) {
    process.stderr.write(`reconcile: could not finish: ${(error as Error)?.name ?? "Error"}: ${redact(String((error as Error)?.message ?? error).slice(0, 200))}\n`);
    return 2;
  } finally {
    await db.end({ timeout: 5 });
  }
}

function usage(message: string): number {
  process.stderr.write(`${message}\n${RECONCILE_USAGE}\n`);
  return 2;
}
