import { z } from "zod";
import { EVENT_TYPES, EVENTS_PER_ENDPOINT_MAX, isPattern } from "../webhooks/event-types";
import { URL_MAX } from "../webhooks/ssrf";
import { IdCursor, PageLimit } from "./schemas";

/**
 * Webhook endpoint inputs (src/api/operations/webhooks.ts), strict like every input (schemas.ts).
 * The URL's form is checked here; whether its host may be reached (https, public addresses) is
 * checked by the handler (src/webhooks/ssrf.ts), which resolves it.
 */
const EventPattern = z
  .string()
  .max(100)
  .refine(isPattern, `a known event type (${EVENT_TYPES.slice(0, 3).join(", ")}, …), a prefix of some ending in ".*" (wallet.*), or *`);

export const CreateWebhookEndpoint = z.strictObject({
  url: z.string().min(1).max(URL_MAX).regex(/^https?:\/\/[\x21-\x7e]+$/, "an https URL").describe("where events are POSTed: https, to a public address"),
  events: z.array(EventPattern).min(1).max(EVENTS_PER_ENDPOINT_MAX).describe("event types or prefixes (wallet.*), or * for every type"),
});

export const ListWebhookEndpoints = z.strictObject({ limit: PageLimit, cursor: IdCursor.optional() });

export const ListWebhookDeliveries = z.strictObject({
  status: z.enum(["pending", "delivered", "failed"]).optional().describe("only deliveries in this state"),
  limit: PageLimit,
  cursor: IdCursor.optional(),
});
