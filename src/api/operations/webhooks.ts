import { z } from "zod";
import { CofferError } from "../../../lib/errors";
import { endpointView, type WebhookEndpoints } from "../../webhooks/endpoints";
import { exactlyOnce } from "../exactly-once";
import { ok, operation, type OperationDeps } from "../operation";
import { Uuid } from "../schemas";
import { claimOf } from "../wallet-service";
import { WebhookDeliveryPage, WebhookDeliveryView, WebhookEndpointPage, WebhookEndpointView, WebhookEndpointWithSecret } from "../webhook-outputs";
import { CreateWebhookEndpoint, ListWebhookDeliveries, ListWebhookEndpoints } from "../webhook-schemas";

/**
 * Webhooks out: apps register endpoints and Coffer POSTs them its events, signed (README "Webhooks
 * out"; src/webhooks/, src/workers/webhook-delivery.ts). Admins and services with webhooks:write
 * register and manage endpoints, auditors and webhooks:read read them; a service sees only the
 * endpoints it registered. Every change is exactly once under its Idempotency-Key (exactly-once.ts):
 * a retried registration answers the same endpoint and the same secret, and makes no second one.
 */
const endpointId = Uuid.describe("the webhook endpoint's id");
const deliveryId = Uuid.describe("the webhook delivery's id");
const ENDPOINT = "0193a2b4-c0d1-7e2f-8a3b-4c5d6e7f8a9b";
const DELIVERY = "0193a2b4-d1e2-7f3a-8b4c-5d6e7f8a9b0c";

function webhooks(deps: OperationDeps): WebhookEndpoints {
  if (!deps.webhooks) throw new CofferError("UNAVAILABLE", "webhooks are not set up on this node");
  return deps.webhooks;
}

export const webhookOperations = [
  operation({
    name: "webhooks.endpoints.create",
    method: "POST",
    path: "/v1/webhook-endpoints",
    summary: "Register an endpoint for Coffer's events (https, public address); its signing secret is shown once",
    input: CreateWebhookEndpoint,
    output: WebhookEndpointWithSecret,
    status: 201,
    action: "webhooks.manage",
    tier: "standard",
    idempotent: true,
    example: { url: "https://hooks.example.com/coffer", events: ["wallet.*", "withdrawal.changed"] },
    run: async ({ caller, key, deps }, input) => {
      const hooks = webhooks(deps);
      await hooks.checkUrl(input.url);
      return exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, "webhooks.endpoints.create", "", input), async (sql) => {
        const created = await hooks.create(caller.principal, input, sql);
        return { status: 201, body: { ...endpointView(created.row), secret: created.secret } };
      }).finally(() => hooks.onChange?.());
    },
  }),
  operation({
    name: "webhooks.endpoints.list",
    method: "GET",
    path: "/v1/webhook-endpoints",
    summary: "Your webhook endpoints, newest first (admins and auditors: every one); never a secret",
    input: ListWebhookEndpoints,
    output: WebhookEndpointPage,
    status: 200,
    action: "webhooks.read",
    tier: "standard",
    idempotent: false,
    example: { limit: 50 },
    run: ({ caller, deps }, q) => ok(webhooks(deps).list(caller.principal, { limit: q.limit, cursor: q.cursor })),
  }),
  operation({
    name: "webhooks.endpoints.get",
    method: "GET",
    path: "/v1/webhook-endpoints/:endpointId",
    summary: "One webhook endpoint (never its secret)",
    input: z.strictObject({ endpointId }),
    output: WebhookEndpointView,
    status: 200,
    action: "webhooks.read",
    tier: "standard",
    idempotent: false,
    example: { endpointId: ENDPOINT },
    run: async ({ caller, deps }, input) => ok(endpointView(await webhooks(deps).get(caller.principal, input.endpointId))),
  }),
  operation({
    name: "webhooks.endpoints.disable",
    method: "POST",
    path: "/v1/webhook-endpoints/:endpointId/disable",
    summary: "Stop sending to an endpoint: new events are not queued for it; queued ones wait until it is enabled",
    input: z.strictObject({ endpointId }),
    output: WebhookEndpointView,
    status: 200,
    action: "webhooks.manage",
    tier: "standard",
    idempotent: true,
    example: { endpointId: ENDPOINT },
    run: ({ caller, key, deps }, input) =>
      exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, "webhooks.endpoints.disable", input.endpointId, input), async (sql) => ({
        status: 200,
        body: endpointView(await webhooks(deps).disable(caller.principal, input.endpointId, sql)),
      })),
  }),
  operation({
    name: "webhooks.endpoints.enable",
    method: "POST",
    path: "/v1/webhook-endpoints/:endpointId/enable",
    summary: "Send to an endpoint again (also one Coffer disabled after failures): queued deliveries resume in order",
    input: z.strictObject({ endpointId }),
    output: WebhookEndpointView,
    status: 200,
    action: "webhooks.manage",
    tier: "standard",
    idempotent: true,
    example: { endpointId: ENDPOINT },
    run: ({ caller, key, deps }, input) =>
      exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, "webhooks.endpoints.enable", input.endpointId, input), async (sql) => ({
        status: 200,
        body: endpointView(await webhooks(deps).enable(caller.principal, input.endpointId, sql)),
      })).finally(() => deps.webhooks?.onChange?.()),
  }),
  operation({
    name: "webhooks.endpoints.deliveries.list",
    method: "GET",
    path: "/v1/webhook-endpoints/:endpointId/deliveries",
    summary: "An endpoint's delivery log, newest first: each event sent, its status and every attempt (status, latency, error class)",
    input: z.strictObject({ endpointId, ...ListWebhookDeliveries.shape }),
    output: WebhookDeliveryPage,
    status: 200,
    action: "webhooks.read",
    tier: "standard",
    idempotent: false,
    example: { endpointId: ENDPOINT, status: "failed", limit: 50 },
    run: ({ caller, deps }, q) => ok(webhooks(deps).deliveries(caller.principal, q.endpointId, { limit: q.limit, cursor: q.cursor, status: q.status })),
  }),
  operation({
    name: "webhooks.deliveries.redeliver",
    method: "POST",
    path: "/v1/webhook-deliveries/:deliveryId/redeliver",
    summary: "Send a delivery's event again now (same event id), beside the endpoint's queue; the endpoint must be enabled",
    input: z.strictObject({ deliveryId }),
    output: WebhookDeliveryView,
    status: 201,
    action: "webhooks.manage",
    tier: "standard",
    idempotent: true,
    example: { deliveryId: DELIVERY },
    run: ({ caller, key, deps }, input) =>
      exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, "webhooks.deliveries.redeliver", input.deliveryId, input), async (sql) => ({
        status: 201,
        body: await webhooks(deps).redeliver(caller.principal, input.deliveryId, sql),
      })).finally(() => deps.webhooks?.onChange?.()),
  }),
];
