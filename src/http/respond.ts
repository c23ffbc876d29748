import { redactSecrets } from "../../lib/redact";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Reply } from "../../actors/envelope";
import { parse, parseJson } from "../api/input";
import { replyOf } from "../api/reply";
import { RETRY_AFTER_S } from "../db/errors";
import { CofferError, type Problem } from "../../lib/errors";

/** Every answer leaves through here: resources as JSON, failures as RFC 9457 problem+json. */
export function send(c: Context, outcome: Reply): Response {
  if (outcome.status >= 400) return sendProblem(c, { ...(outcome.body as Problem), instance: instanceOf(c) });
  return c.json(outcome.body, outcome.status as ContentfulStatusCode);
}

/**
 * The problem's `instance` is the request path, so a replayed answer is identical to the first.
 * A path that is long or has odd characters (a hostile one) is not repeated back; the request id
 * in the x-request-id header and the logs still identifies the occurrence.
 */
export function instanceOf(c: Context): string | undefined {
  const path = c.req.path;
  return path.length <= 128 && /^[A-Za-z0-9/_\-.]+$/.test(path) ? path : undefined;
}

export function sendProblem(_c: Context, body: Problem): Response {
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (body.status === 401) headers["www-authenticate"] = 'Bearer realm="coffer"';
  if (body.status === 429 && typeof body.retryAfter === "number") headers["retry-after"] = String(body.retryAfter);
  // Every 503 (the ledger unavailable, the node overloaded, an actor moving between nodes) passes:
  // say when to come back, the problem's own `retryAfter` when it has one.
  if (body.status === 503) headers["retry-after"] = String(typeof body.retryAfter === "number" ? body.retryAfter : RETRY_AFTER_S);
  // Details are our own sentences: what they quote of a request was redacted where it was quoted
  // (src/api/input.ts), so our limits and ids leave exactly as written. No secret leaves, whatever.
  const safe = { ...body, detail: redactSecrets(body.detail) };
  return new Response(JSON.stringify(safe), { status: body.status, headers });
}

export function sendError(c: Context, error: unknown): Response {
  const outcome = replyOf(error, { requestId: c.get("requestId" as never), route: c.req.routePath });
  return sendProblem(c, { ...(outcome.body as Problem), instance: instanceOf(c) });
}

const MAX_KEY = 255;
/** Every POST must carry an Idempotency-Key: a retry is then always safe. */
export function idempotencyKey(c: Context): string {
  const key = c.req.header("idempotency-key");
  if (!key) throw new CofferError("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header with every POST");
  if (key.length > MAX_KEY || !/^[\x21-\x7e]+$/.test(key)) {
    throw new CofferError("VALIDATION_FAILED", `Idempotency-Key must be 1 to ${MAX_KEY} printable ASCII characters`);
  }
  return key;
}

/** Parse a JSON body against a schema; anything off is a 400 that names the fields. */
export async function body<S extends z.ZodType>(c: Context, schema: S, { optional = false } = {}): Promise<z.infer<S>> {
  return parseJson(await c.req.text(), schema, { optional });
}

export { parse };
