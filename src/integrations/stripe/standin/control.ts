import { StripeApiError } from "./errors";
import { parseFault } from "./faults";
import { parseForm } from "./form";
import type { StripeStandin } from "./server";
import { describeDeliveryMode } from "./webhooks";

/**
 * The stand-in's own control API, under `/_standin` (a prefix Stripe never uses), for tests and
 * app developers: make the network decide a dispute, fail a refund or a payout, switch webhook
 * delivery, inject faults, inspect events and deliveries, reset. Bodies are JSON or form-encoded;
 * answers are JSON. No API key is needed (the stand-in listens on 127.0.0.1 only by default).
 */

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2), { status, headers: { "content-type": "application/json" } });
}

function fail(message: string, status = 400): Response {
  return json({ error: { type: "invalid_request_error", message } }, status);
}

async function readBody(req: Request): Promise<Record<string, unknown>> {
  if (req.method === "GET" || req.method === "DELETE") return {};
  const text = await req.text();
  if (text.trim() === "") return {};
  const type = req.headers.get("content-type") ?? "";
  if (type.includes("json") || text.trimStart().startsWith("{")) {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("the body must be a JSON object");
    return parsed as Record<string, unknown>;
  }
  return parseForm(text) as Record<string, unknown>;
}

const str = (v: unknown): string | undefined => (v === undefined || v === null || v === "" ? undefined : String(v));

export async function handleControl(standin: StripeStandin, req: Request, url: URL): Promise<Response> {
  const method = req.method.toUpperCase();
  const parts = url.pathname.split("/").filter(Boolean).slice(1); // drop "_standin"
  try {
    const body = await readBody(req);
    const q = Object.fromEntries(url.searchParams);
    const [resource, id, action] = parts as [string?, string?, string?];

    if (parts.length === 0 && method === "GET") {
      return json({
        object: "standin",
        url: standin.url,
        api_version: standin.apiVersion,
        webhook_url: standin.webhookUrl() ?? null,
        delivery: describeDeliveryMode(standin.delivery()),
        faults: standin.faults(),
        counts: standin.state.counts(),
      });
    }
    if (resource === "reset" && method === "POST") {
      standin.reset();
      return json({ reset: true });
    }
    if (resource === "idle" && (method === "GET" || method === "POST")) {
      await standin.idle(Number(q.timeout_ms ?? body.timeout_ms ?? 10_000));
      return json({ idle: true });
    }
    if (resource === "events" && id === undefined && method === "GET") {
      const type = str(q.type);
      return json({ object: "list", data: standin.events(type) });
    }
    if (resource === "events" && id && action === "resend" && method === "POST") {
      standin.resendEvent(id);
      return json({ resent: id });
    }
    if (resource === "deliveries" && method === "GET") {
      const eventId = str(q.event_id);
      return json({ object: "list", data: standin.deliveries().filter((d) => eventId === undefined || d.event_id === eventId) });
    }
    if (resource === "delivery" && method === "GET") return json({ mode: describeDeliveryMode(standin.delivery()), ...standin.delivery() });
    if (resource === "delivery" && method === "POST") {
      const input = body.mode !== undefined ? String(body.mode) : {
        twice: body.twice === true || body.twice === "true",
        shuffled: body.shuffled === true || body.shuffled === "true",
        lateMs: Number(body.lateMs ?? body.late_ms ?? 0),
      };
      const mode = standin.setDelivery(input);
      return json({ mode: describeDeliveryMode(mode), ...mode });
    }
    if (resource === "webhook" && method === "POST") {
      standin.setWebhook(str(body.url), str(body.secret));
      return json({ webhook_url: standin.webhookUrl() ?? null });
    }
    if (resource === "faults" && method === "GET") return json({ object: "list", data: standin.faults() });
    if (resource === "faults" && method === "DELETE") {
      standin.clearFaults();
      return json({ cleared: true });
    }
    if (resource === "faults" && method === "POST") return json(standin.injectFault(parseFault(body)));
    if (resource === "disputes" && id && action === "close" && method === "POST") {
      const status = str(body.status) ?? "won";
      if (status !== "won" && status !== "lost") return fail('status must be "won" or "lost"');
      return json(standin.closeDispute(id, status));
    }
    if (resource === "charges" && id && action === "dispute" && method === "POST") {
      const amount = body.amount === undefined ? undefined : Number(body.amount);
      if (amount !== undefined && (!Number.isInteger(amount) || amount <= 0)) return fail("amount must be a positive integer");
      return json(
        standin.openDispute(id, { reason: str(body.reason), amount, inquiry: body.inquiry === true || body.inquiry === "true" }),
      );
    }
    if (resource === "refunds" && id && action === "fail" && method === "POST") {
      return json(standin.failRefund(id, str(body.failure_reason)));
    }
    if (resource === "payouts" && id && action === "pay" && method === "POST") return json(standin.payPayout(id));
    if (resource === "payouts" && id && action === "fail" && method === "POST") {
      return json(standin.failPayout(id, str(body.failure_code), str(body.failure_message)));
    }
    return fail(`Unknown stand-in control route: ${method} ${url.pathname}`, 404);
  } catch (err) {
    if (err instanceof StripeApiError) return json({ error: err.body }, err.status);
    return fail(err instanceof Error ? err.message : String(err));
  }
}
