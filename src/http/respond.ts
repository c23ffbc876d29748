import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Outcome } from "../../actors/envelope";
import { CofferError, problem, type Problem } from "../errors";

/** Every answer leaves through here: resources as JSON, failures as RFC 9457 problem+json. */
export function send(c: Context, outcome: Outcome): Response {
  if (outcome.status >= 400) return sendProblem(c, { ...(outcome.body as Problem), instance: c.req.path });
  return c.json(outcome.body, outcome.status as ContentfulStatusCode);
}

export function sendProblem(c: Context, body: Problem): Response {
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": "application/problem+json" },
  });
}

export function sendError(c: Context, error: unknown): Response {
  if (error instanceof CofferError) return sendProblem(c, error.toProblem(c.req.path));
  // A programmer error or an outage: log it with the request id, tell the caller nothing internal.
  console.error(JSON.stringify({ level: "error", msg: "unhandled error", requestId: c.get("requestId" as never), path: c.req.path, error: String((error as Error)?.message ?? error) }));
  return sendProblem(c, problem("INTERNAL", "something went wrong on our side; it has been logged", c.req.path));
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
  return parse(schema, raw, "body");
}

export function parse<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const errors = result.error.issues.slice(0, 20).map((i) => ({ path: [where, ...i.path.map(String)].join("."), message: i.message }));
    throw new CofferError("VALIDATION_FAILED", `invalid ${where}: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`.slice(0, 1000), { errors });
  }
  return result.data;
}
