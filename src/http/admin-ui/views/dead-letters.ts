import type { RouteAction } from "../capabilities";
import { card, h, pill, replace, shortId, table, time } from "../dom";
import type { Page, WebhookDelivery, WebhookEndpoint } from "../types";
import { actionButton, errorText, type Ctx, type View } from "../ui";

const REFRESH_MS = 15_000;
/** Endpoints looked at for failed deliveries, and deliveries shown per endpoint, at most. */
const ENDPOINTS_MAX = 50;
const DELIVERIES_PER_ENDPOINT = 50;

/**
 * What gave up: the event dead-letter queue when the node has routes for one (found in
 * /openapi.json: a path with `dead-letter` or `dlq`), with re-drive; otherwise it says so. And the
 * webhook deliveries that failed after their last retry, which an admin can send again, with the
 * endpoints Coffer disabled for failing, which an admin can enable again.
 */
export const deadLetters: View = (el, ctx) => {
  const queue = h("div", { data: { test: "dead-letter-queue" } });
  const hooks = h("div", { data: { test: "webhook-failures" } });
  el.append(card("Dead-letter queue", queue), card("Webhook deliveries that gave up", hooks));

  const { list, redrive } = ctx.caps.deadLetters;
  if (!list.length) {
    replace(
      queue,
      h("div", { class: "unavailable", data: { test: "dlq-unavailable" } }, h("strong", { text: "Not available on this node." }), h("p", {
        text: "This node's API has no dead-letter queue routes (none in /openapi.json), so there is nothing to list or re-drive here. When a version with them runs, this view lists what is in the queue and offers re-drive.",
      })),
    );
  } else {
    ctx.every(REFRESH_MS, async () => {
      const sections: Node[] = [];
      for (const path of list) {
        try {
          const page = await ctx.api.get<Page<Record<string, unknown>> | Record<string, unknown>[]>(path, { limit: 100 });
          const items = Array.isArray(page) ? page : page.items;
          sections.push(h("h3", { text: path }), genericTable(ctx, items, path, redrive));
        } catch (error) {
          sections.push(h("h3", { text: path }), h("p", { class: "form-error", text: errorText(error) }));
        }
      }
      replace(queue, ...sections);
    });
  }

  if (!ctx.caps.webhooks) {
    replace(hooks, h("p", { class: "unavailable", text: "This node sends no webhooks (no webhook endpoint routes)." }));
  } else {
    ctx.every(REFRESH_MS, () => webhookFailures(ctx, hooks));
  }
};

/** A list whose shape the page does not know: its scalar fields as columns, and the re-drive routes that fit it. */
function genericTable(ctx: Ctx, items: Record<string, unknown>[], listPath: string, redrive: RouteAction[]): HTMLElement {
  const keys = [...new Set(items.flatMap((i) => Object.keys(i).filter((k) => ["string", "number", "boolean"].includes(typeof i[k]))))].slice(0, 8);
  const routes = redrive.filter((r) => r.path.startsWith(listPath));
  return table(
    [
      ...keys.map((k) => ({ label: k, cell: (i: Record<string, unknown>) => (k === "id" || k.endsWith("Id") ? shortId(String(i[k])) : String(i[k] ?? "—")) })),
      {
        label: "",
        cell: (i: Record<string, unknown>) => {
          const host = h("div");
          const id = String(i.id ?? "");
          // Every parameter of a re-drive route is the item's id (`/admin/dead-letters/{eventId}/redrive`).
          const params = (r: RouteAction) => Object.fromEntries([...r.path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => [m[1]!, id]));
          const buttons = id ? routes.map((r) => actionButton(ctx, r, params(r), host, () => ctx.toast("Re-driven."))) : [];
          return [h("div", { class: "row" }, buttons), host];
        },
      },
    ],
    items,
    { empty: "The queue is empty." },
  );
}

async function webhookFailures(ctx: Ctx, host: HTMLElement): Promise<void> {
  const endpoints = (await ctx.api.get<Page<WebhookEndpoint>>("/v1/webhook-endpoints", { limit: ENDPOINTS_MAX })).items;
  const failed: (WebhookDelivery & { url: string })[] = [];
  for (const e of endpoints) {
    const page = await ctx.api.get<Page<WebhookDelivery>>(`/v1/webhook-endpoints/${encodeURIComponent(e.id)}/deliveries`, { status: "failed", limit: DELIVERIES_PER_ENDPOINT });
    failed.push(...page.items.map((d) => ({ ...d, url: e.url })));
  }
  const disabled = endpoints.filter((e) => e.status === "disabled");
  const redeliver = ctx.caps.action("/v1/webhook-deliveries/{deliveryId}/redeliver", "Redeliver");
  const enable = ctx.caps.action("/v1/webhook-endpoints/{endpointId}/enable", "Enable");
  const form = h("div");
  replace(
    host,
    h("p", { class: "hint", text: `${endpoints.length} endpoint${endpoints.length === 1 ? "" : "s"}, ${disabled.length} disabled, ${failed.length} deliveries given up.` }),
    disabled.length
      ? table(
          [
            { label: "Disabled endpoint", cell: (e: WebhookEndpoint) => e.url },
            { label: "Why", cell: (e: WebhookEndpoint) => e.disabledReason ?? "—" },
            { label: "", cell: (e: WebhookEndpoint) => (enable ? actionButton(ctx, enable, { endpointId: e.id }, form, () => void webhookFailures(ctx, host)) : null) },
          ],
          disabled,
        )
      : null,
    table(
      [
        { label: "When", cell: (d: WebhookDelivery & { url: string }) => time(d.createdAt) },
        { label: "Endpoint", cell: (d: WebhookDelivery & { url: string }) => d.url },
        { label: "Event", cell: (d: WebhookDelivery & { url: string }) => [d.eventType, " ", shortId(d.eventId)] },
        { label: "Attempts", cell: (d: WebhookDelivery & { url: string }) => String(d.attempts.length), class: "num" },
        { label: "Last error", cell: (d: WebhookDelivery & { url: string }) => pill(d.attempts.at(-1)?.error ?? "none", "state") },
        {
          label: "",
          cell: (d: WebhookDelivery & { url: string }) => (redeliver ? actionButton(ctx, redeliver, { deliveryId: d.id }, form, () => void webhookFailures(ctx, host)) : null),
        },
      ],
      failed,
      { empty: "No webhook delivery has given up." },
    ),
    form,
  );
}
