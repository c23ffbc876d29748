import { isDatabaseUnavailable } from "../db/errors";
import { log, reason } from "../log";
import { redact, redactDeep } from "../security/redact";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Outcome } from "../../actors/envelope";
import { CofferError, problem, type Problem } from "../errors";

/** Every answer leaves through here: resources as JSON, failures as RFC 9457 problem+json. */
export function send(c: Context, outcome: Outcome): Response {
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
  // Details are our own sentences, but some quote a field of the request: redact them anyway.
  const safe = { ...body, detail: redact(body.detail), ...(Array.isArray(body.errors) ? { errors: redactDeep(body.errors) } : {}) };
  return new Response(JSON.stringify(safe), { status: body.status, headers });
}

export function sendError(c: Context, error: unknown): Response {
  if (error instanceof CofferError) return sendProblem(c, error.toProblem(instanceOf(c)));
  if (isDatabaseUnavailable(error)) {
    log("warn", "database unavailable", { requestId: c.get("requestId" as never), route: c.req.routePath, error: reason(error) });
    return sendProblem(c, problem("UNAVAILABLE", "the ledger is unavailable; retry with the same idempotency key", instanceOf(c)));
  }
  // A programmer error or an outage: log it with the request id, tell the caller nothing internal.
  log("error", "unhandled error", { requestId: c.get("requestId" as never), route: c.req.routePath, error: reason(error) });
  return sendProblem(c, problem("INTERNAL", "something went wrong on our side; it has been logged", instanceOf(c)));
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
  const text = await c.req.text();
  let raw: unknown = undefined;
  if (text.trim().length > 0) {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new CofferError("VALIDATION_FAILED", "the body is not valid JSON");
    }
  } else if (!optional) {
    throw new CofferError("VALIDATION_FAILED", "a JSON body is required");
  }
  if (depthOf(raw) > MAX_JSON_DEPTH) throw new CofferError("VALIDATION_FAILED", `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return parse(schema, raw, "body");
}

export function parse<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const errors = result.error.issues.slice(0, 20).map((i) => ({ path: clip([where, ...i.path.map(String)].join("."), 64), message: messageOf(i) }));
    throw new CofferError("VALIDATION_FAILED", `invalid ${where}: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`.slice(0, 1000), { errors });
  }
  return result.data;
}

/** Zod repeats unknown keys in its messages; those are the caller's strings, so keep them short. */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `unknown field${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.slice(0, 5).map((k) => clip(k, 32)).join(", ")}`;
  return clip(issue.message, 200);
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** No request body here needs more than a few levels; deep nesting is only ever an attack. */
const MAX_JSON_DEPTH = 16;

/** Nesting depth of a parsed JSON value, without recursion (a hostile body must not blow the stack). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}
