import { randomBytes } from "node:crypto";
import { DEFAULT_PORT, startStripeStandin } from "./server";
import { describeDeliveryMode } from "./webhooks";

/**
 * `bun run stripe-standin`: a local stand-in for Stripe's test-mode API on 127.0.0.1:12111.
 *
 *   STRIPE_STANDIN_PORT              port (default 12111)
 *   STRIPE_STANDIN_HOST              interface (default 127.0.0.1)
 *   STRIPE_STANDIN_WEBHOOK_URL       where events are POSTed (none: events are only kept)
 *   STRIPE_WEBHOOK_SECRET            whsec_… used to sign them (generated and printed when missing)
 *   STRIPE_STANDIN_DELIVERY          normal | twice | shuffled | late | late:<ms>, comma-combined
 *   STRIPE_STANDIN_PAYOUTS           auto (default) | manual
 *   STRIPE_STANDIN_SETTLE_DELAY_MS   delay before payouts settle / refundFail refunds fail (default 100)
 *   STRIPE_STANDIN_WEBHOOK_ATTEMPTS  attempts per webhook delivery (default 5)
 *   STRIPE_STANDIN_WEBHOOK_RETRY_MS  first retry delay, doubling (default 500)
 *   STRIPE_STANDIN_QUIET=1           no per-request log lines
 */

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const webhookUrl = process.env.STRIPE_STANDIN_WEBHOOK_URL || undefined;
let webhookSecret = process.env.STRIPE_WEBHOOK_SECRET || undefined;
let generatedSecret = false;
if (webhookUrl && !webhookSecret) {
  webhookSecret = `whsec_${randomBytes(24).toString("hex")}`;
  generatedSecret = true;
}
const payouts = process.env.STRIPE_STANDIN_PAYOUTS === "manual" ? "manual" : "auto";

const standin = await startStripeStandin({
  port: intFromEnv("STRIPE_STANDIN_PORT", DEFAULT_PORT),
  hostname: process.env.STRIPE_STANDIN_HOST || undefined,
  webhookUrl,
  webhookSecret,
  delivery: process.env.STRIPE_STANDIN_DELIVERY || undefined,
  payouts,
  settleDelayMs: intFromEnv("STRIPE_STANDIN_SETTLE_DELAY_MS", 100),
  retry: {
    maxAttempts: Math.max(1, intFromEnv("STRIPE_STANDIN_WEBHOOK_ATTEMPTS", 5)),
    baseDelayMs: intFromEnv("STRIPE_STANDIN_WEBHOOK_RETRY_MS", 500),
  },
  log: (line) => console.log(`[stripe-standin] ${line}`),
  logRequests: process.env.STRIPE_STANDIN_QUIET !== "1",
});

console.log(`[stripe-standin] Stripe test-mode stand-in listening on ${standin.url} (api_version ${standin.apiVersion})`);
console.log(`[stripe-standin]   SDK: new Stripe("sk_test_…", { host: "${standin.host}", port: ${standin.port}, protocol: "http" })`);
console.log(
  `[stripe-standin]   webhooks: ${webhookUrl ?? "(none: set STRIPE_STANDIN_WEBHOOK_URL)"}; delivery ${describeDeliveryMode(standin.delivery())}; payouts ${payouts}`,
);
if (generatedSecret) console.log(`[stripe-standin]   STRIPE_WEBHOOK_SECRET was not set; signing with ${webhookSecret}`);
console.log(`[stripe-standin]   control API: ${standin.url}/_standin`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void standin.stop().then(() => process.exit(0));
  });
}
