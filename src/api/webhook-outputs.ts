import { z } from "zod";

/**
 * What the webhook endpoint operations answer with (src/api/operations/webhooks.ts), in the manner
 * of outputs.ts; built by src/webhooks/endpoints.ts. No answer but the registration's ever holds
 * the signing secret, and no delivery log holds a body.
 */
const Id = z.uuid();
const Time = z.iso.datetime({ offset: true }).describe("an ISO-8601 time");
const NextCursor = z.string().nullable().describe("pass it as `cursor` for the next page; null on the last page");

export const WebhookEndpointView = z.object({
  id: Id,
  url: z.string(),
  events: z.array(z.string()),
  status: z.enum(["enabled", "disabled"]),
  disabledReason: z.enum(["manual", "failing"]).nullable().describe("failing: disabled by Coffer after repeated failures (an alert was raised)"),
  disabledAt: Time.nullable(),
  owner: z.string().describe("who registered it (`service:<subject>`, `admin:<subject>`)"),
  createdAt: Time,
  updatedAt: Time,
});

export const WebhookEndpointWithSecret = WebhookEndpointView.extend({
  secret: z.string().regex(/^whsec_/).describe("the signing secret: shown in this answer only (a retry with the same Idempotency-Key shows it again)"),
});

export const WebhookEndpointPage = z.object({ items: z.array(WebhookEndpointView), nextCursor: NextCursor }).describe("endpoints, newest first");

const WebhookAttempt = z.object({
  attempt: z.number().int(),
  at: Time,
  statusCode: z.number().int().nullable().describe("the receiver's HTTP status, when it answered"),
  latencyMs: z.number().int(),
  error: z
    .enum(["timeout", "connect", "dns", "address_refused", "redirect", "http_4xx", "http_5xx", "tls", "too_large", "network"])
    .nullable()
    .describe("what went wrong, as a class; null when delivered"),
});

export const WebhookDeliveryView = z.object({
  id: Id,
  endpointId: Id,
  eventId: Id.describe("the event's id: the same in every attempt and redelivery (deduplicate on it)"),
  eventType: z.string(),
  aggregateId: Id.describe("the wallet, chama or deposit the event is about"),
  redeliveryOf: Id.nullable().describe("a manual redelivery: the delivery it repeats"),
  status: z.enum(["pending", "delivered", "failed"]).describe("failed: given up after the last retry"),
  nextAttemptAt: Time.nullable(),
  createdAt: Time,
  deliveredAt: Time.nullable(),
  attempts: z.array(WebhookAttempt),
});

export const WebhookDeliveryPage = z.object({ items: z.array(WebhookDeliveryView), nextCursor: NextCursor }).describe("deliveries, newest first");
