/**
 * Crash points, for the chaos tests only (test/chaos/stripe-kill.test.ts, chain-kill.test.ts): with
 * COFFER_TEST_CRASH_AT=<point> in its environment, the process SIGKILLs itself when it reaches
 * that point, exactly as if the machine had died there: no shutdown hook, nothing flushed. Without
 * the variable (always, outside those tests) a crash point does nothing.
 *
 * - `deposit.after_payment_intent`: Stripe made the PaymentIntent; the deposit is not recorded yet.
 * - `deposit.before_credit`: the deposit succeeded (committed); the wallet is not credited yet.
 * - `refund.after_stripe`: Stripe made the refund; its answer is not reported to the deposit yet.
 * - `payout.after_stripe`: Stripe made a withdrawal's payout (or transfer); nothing of its answer is recorded yet.
 * - `payout.before_complete`: Stripe reported the payout paid (the event is stored); the wallet is not told yet.
 * - `chain.after_sign`: a chain payout's signed transaction is stored (committed); nothing is broadcast yet.
 * - `chain.after_broadcast`: the node accepted the broadcast; the payout's row does not say so yet.
 */
export type CrashPoint = "deposit.after_payment_intent" | "deposit.before_credit" | "refund.after_stripe" | "payout.after_stripe" | "payout.before_complete" | "chain.after_sign" | "chain.after_broadcast";

const ARMED = process.env.COFFER_TEST_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (ARMED === point) process.kill(process.pid, "SIGKILL");
}
