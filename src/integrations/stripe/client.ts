import Stripe from "stripe";
import { CofferError } from "../../../lib/errors";
import { log, reason } from "../../../lib/log";
import type { Config } from "../../config";

/**
 * The one place Coffer builds its Stripe client (the official SDK), and the one place Stripe's
 * failures become Coffer's answers.
 *
 * - Pointed at STRIPE_API_BASE: Stripe's own API by default; anything else (the local stand-in,
 *   src/integrations/stripe/standin/) is passed to the SDK as host, port and protocol.
 * - `maxNetworkRetries: 0`: the SDK never retries on its own. Coffer retries, with the same Stripe
 *   idempotency key every time (derived from the caller's key or from the object's id), so a retry
 *   can never make a second PaymentIntent or refund; a retry the SDK made with a key of its own
 *   could.
 * - A timeout on every call (STRIPE_TIMEOUT_MS): a Stripe that does not answer is a 503, retried.
 */
export interface StripeSettings {
  secretKey: string;
  webhookSecret: string;
  apiBase: string;
  timeoutMs: number;
}

export function stripeSettingsOf(config: Config): StripeSettings | undefined {
  if (!config.STRIPE_SECRET_KEY || !config.STRIPE_WEBHOOK_SECRET) return undefined;
  const settings = { apiBase: config.STRIPE_API_BASE, timeoutMs: config.STRIPE_TIMEOUT_MS } as StripeSettings;
  // Secrets ride along non-enumerable, so a settings object logged or serialised by mistake shows neither.
  Object.defineProperty(settings, "secretKey", { value: config.STRIPE_SECRET_KEY, enumerable: false });
  Object.defineProperty(settings, "webhookSecret", { value: config.STRIPE_WEBHOOK_SECRET, enumerable: false });
  return settings;
}

export function stripeClient(settings: StripeSettings): Stripe {
  const base = new URL(settings.apiBase);
  const protocol = base.protocol === "http:" ? "http" : "https";
  return new Stripe(settings.secretKey, {
    host: base.hostname,
    port: base.port || (protocol === "http" ? 80 : 443),
    protocol,
    maxNetworkRetries: 0,
    timeout: settings.timeoutMs,
    telemetry: false,
    appInfo: { name: "coffer" },
  });
}

/** Stripe's idempotency key for creating a deposit's PaymentIntent: one per deposit, so one per caller key. */
export const paymentIntentKey = (depositId: string) => `coffer-deposit-${depositId}`;
/** Stripe's idempotency key for a refund: its Coffer id, so the saga's retries and the API's make one refund. */
export const refundKey = (refundId: string) => `coffer-refund-${refundId}`;

/**
 * Stripe's idempotency key for paying a withdrawal out (a payout, or a Connect transfer): its Coffer
 * id, so every retry of the payout worker, after a crash too, makes one payout.
 */
export const payoutKey = (withdrawalId: string) => `coffer-payout-${withdrawalId}`;

/** Metadata Coffer puts on what it creates at Stripe; an object without it is not Coffer's. */
export const METADATA = { depositId: "coffer_deposit_id", walletId: "coffer_wallet_id", refundId: "coffer_refund_id", withdrawalId: "coffer_withdrawal_id" } as const;

/** How a failed Stripe call turns out for its caller. */
export type StripeFailure =
  /** Stripe did not answer, timed out, failed on its side or asked us to slow down: retry later, with the same key. */
  | { kind: "unavailable" }
  /** The same idempotency key was used with other parameters. */
  | { kind: "conflict" }
  /** Stripe refused the request itself (invalid, a card declined, …): a retry gets the same answer. */
  | { kind: "refused"; code: string; message: string }
  /** Our key was refused: the configuration is wrong. */
  | { kind: "misconfigured" };

export function classify(error: unknown): StripeFailure {
  if (!(error instanceof Stripe.errors.StripeError)) return { kind: "unavailable" };
  if (error instanceof Stripe.errors.StripeIdempotencyError) return { kind: "conflict" };
  if (error instanceof Stripe.errors.StripeAuthenticationError || error instanceof Stripe.errors.StripePermissionError) return { kind: "misconfigured" };
  const status = error.statusCode ?? 0;
  if (error instanceof Stripe.errors.StripeConnectionError || error instanceof Stripe.errors.StripeAPIError || error instanceof Stripe.errors.StripeRateLimitError) {
    return { kind: "unavailable" };
  }
  if (status === 0 || status >= 500 || status === 429 || status === 409) return { kind: "unavailable" };
  // (409: a request with the same key is still in flight at Stripe: it answers once that one ends.)
  if (error.code === "idempotency_key_in_use") return { kind: "unavailable" };
  return { kind: "refused", code: error.code ?? error.type ?? "stripe_error", message: error.message };
}

/**
 * A failed Stripe call for a log line, without its message: Stripe's messages may quote what was
 * sent ("No such external account: 'ba_…'"), and a payout's destination must never reach a log.
 */
export function failureSummary(error: unknown): string {
  if (!(error instanceof Stripe.errors.StripeError)) return (error as Error)?.name ?? "Error";
  return [error.type, error.code, error.statusCode].filter((x) => x !== undefined && x !== null && x !== "").join("/");
}

/** A failed Stripe call as the caller's answer (after it was logged without secrets). */
export function stripeProblem(error: unknown, what: string): CofferError {
  const failure = classify(error);
  switch (failure.kind) {
    case "unavailable":
      log("warn", `stripe: ${what} failed; the caller may retry`, { error: reason(error) });
      return new CofferError("UNAVAILABLE", "the payment provider did not answer; retry with the same idempotency key");
    case "conflict":
      return new CofferError("IDEMPOTENCY_CONFLICT", "this idempotency key was already used with a different request");
    case "misconfigured":
      log("error", `alert: stripe refused Coffer's API key during ${what}`, { error: reason(error) });
      return new CofferError("UNAVAILABLE", "the payment provider is unavailable; retry later");
    case "refused":
      return new CofferError("STRIPE_REFUSED", `the payment provider refused this request (${failure.code})`);
  }
}
