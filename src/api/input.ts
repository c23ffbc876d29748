import type { z } from "zod";
import { CofferError } from "../../lib/errors";

/**
 * Turning a request's text into a typed input, the same way for every transport (REST bodies,
 * NATS payloads): valid JSON, not nested deeper than anyone needs, matching the schema; anything
 * else is a 400 VALIDATION_FAILED that names the fields but never repeats long caller strings.
 */
export function parseJson<S extends z.ZodType>(text: string, schema: S, { optional = false, where = "body" } = {}): z.infer<S> {
  let raw: unknown = undefined;
  if (text.trim().length > 0) {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new CofferError("VALIDATION_FAILED", `the ${where} is not valid JSON`);
    }
  } else if (!optional) {
    throw new CofferError("VALIDATION_FAILED", `a JSON ${where} is required`);
  }
  if (depthOf(raw) > MAX_JSON_DEPTH) throw new CofferError("VALIDATION_FAILED", `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return parse(schema, raw, where);
}

/**
 * `where` names what was parsed (`body`, `payload`), or, for input gathered from several places
 * (path, query, body), says for each top-level field where it came from.
 */
export function parse<S extends z.ZodType>(schema: S, raw: unknown, where: string | ((field: string) => string)): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const origin = typeof where === "string" ? () => where : where;
    const pathOf = (p: PropertyKey[]) => (p.length ? [origin(String(p[0])), ...p.map(String)] : [origin("")]).join(".");
    const errors = result.error.issues.slice(0, 20).map((i) => ({ path: clip(pathOf(i.path), 64), message: messageOf(i) }));
    const what = typeof where === "string" ? where : "input";
    throw new CofferError("VALIDATION_FAILED", `invalid ${what}: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`.slice(0, 1000), { errors });
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
