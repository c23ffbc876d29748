/** A local stand-in for Stripe's test-mode API: see README "Stripe stand-in". */
export { DEFAULT_HOST, DEFAULT_PORT, startStripeStandin } from "./server";
export type { StandinLimits, StripeStandin, StripeStandinOptions } from "./server";
export { DEFAULT_RETRY, parseDeliveryMode, signPayload } from "./webhooks";
export type { Delivery, DeliveryInput, DeliveryMode, RetryPolicy } from "./webhooks";
export type { ActiveFault, FaultMode, FaultSpec } from "./faults";
export { PAYOUT_FAILURES, TEST_CARDS } from "./magic";
