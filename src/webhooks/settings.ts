import type { Config } from "../config";
import { urlPolicyOf, type UrlPolicy } from "./ssrf";

/**
 * Webhooks out, as configured (src/config.ts `WEBHOOK_*`, README "Webhooks out"). Every queue and
 * loop has its bound here: attempts in flight per node and per endpoint, attempts per delivery,
 * how long a delivery is retried, endpoints per owner, the size of what is sent.
 */
export interface WebhookSettings {
  policy: UrlPolicy;
  /** One attempt's time limit, connection to response headers. */
  timeoutMs: number;
  /** Attempts in flight on one node at most. */
  concurrency: number;
  /** Attempts in flight to one endpoint from one node at most. */
  perEndpoint: number;
  /** Backoff after a failed attempt: baseMs·2^(n−1), at most maxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** A delivery is given up (status `failed`) after this many attempts, or once it is this old. */
  maxAttempts: number;
  maxAgeMs: number;
  /** An endpoint is disabled (and an alert raised) after this many failed attempts in a row spanning at least disableAfterMs. */
  disableAfterFailures: number;
  disableAfterMs: number;
  /** How often the worker looks for new events and due retries (it is also kicked after each attempt). */
  pollMs: number;
  /** Enabled endpoints one owner may have at most. */
  endpointsMax: number;
  /** The largest body sent; a bigger event is given up at once (`too_large`). */
  bodyMaxBytes: number;
}

export const BODY_MAX_BYTES = 256 * 1024;

export function webhookSettingsOf(config: Config): WebhookSettings {
  return {
    policy: urlPolicyOf(config),
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    concurrency: config.WEBHOOK_CONCURRENCY,
    perEndpoint: config.WEBHOOK_ENDPOINT_CONCURRENCY,
    retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
    retryMaxMs: Math.max(config.WEBHOOK_RETRY_MAX_MS, config.WEBHOOK_RETRY_BASE_MS),
    maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    maxAgeMs: config.WEBHOOK_MAX_AGE_MS,
    disableAfterFailures: config.WEBHOOK_DISABLE_AFTER_FAILURES,
    disableAfterMs: config.WEBHOOK_DISABLE_AFTER_MS,
    pollMs: config.WEBHOOK_POLL_MS,
    endpointsMax: config.WEBHOOK_ENDPOINTS_MAX,
    bodyMaxBytes: BODY_MAX_BYTES,
  };
}
