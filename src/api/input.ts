import type { z } from "zod";
import { CofferError, type ErrorCode } from "../../lib/errors";
import { quote } from "../../lib/redact";

/**
 * Turning a request's text into a typed input, the same way for every transport (REST bodies,
 * NATS payloads): valid JSON, not nested deeper than anyone needs, matching the schema; anything
 * else is a 400 VALIDATION_FAILED that names the fields but never repeats long caller strings.
 */
export function parseJson<S extends z.ZodType>(
  text: string,
  schema: S,
  { optional = false, where = "body", accept }: { optional?: boolean; where?: string; accept?: (value: unknown) => boolean } = {},
): z.infer<S> {
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
  // `accept`: a check the schema would pass the value through unchanged on (a transport's "any
  // JSON object", whose fields the operation's own schema checks next); what it does not accept
  // goes to the schema, which refuses it in its own words.
  if (accept?.(raw)) return raw as z.infer<S>;
  return parse(schema, raw, where);
}

/**
 * `where` names what was parsed (`body`, `payload`), or, for input gathered from several places
 * (path, query, body), says for each top-level field where it came from.
 */
export function parse<S extends z.ZodType>(schema: S, raw: unknown, where: string | ((field: string) => string)): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const origin = originOf(where);
    const errors = result.error.issues.slice(0, 20).map((i) => ({ path: pathOf(origin, i.path), message: messageOf(i) }));
    throw invalid(where, errors);
  }
  return result.data;
}

type Origin = (field: string) => string;
type FieldProblem = { path: string; message: string };

const originOf = (where: string | Origin): Origin => (typeof where === "string" ? () => where : where);

/**
 * Where a field came from, then its path (`body.destination.account`, `payload.amount`). Paths are
 * the schema's field names, except where the caller chose the key (a record's): quoted as theirs.
 */
function pathOf(origin: Origin, path: readonly PropertyKey[]): string {
  const parts = path.length ? [origin(String(path[0])), ...path.map(String)] : [origin("")];
  return quote(parts.join("."), 64);
}

/** The one VALIDATION_FAILED every transport and every check answers: a sentence naming each field, and the list. */
function invalid(where: string | Origin, errors: FieldProblem[], code: ErrorCode = "VALIDATION_FAILED"): CofferError {
  const what = typeof where === "string" ? where : "input";
  return new CofferError(code, `invalid ${what}: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`.slice(0, 1000), { errors });
}

/**
 * Zod's messages are ours (the schema's limits, formats and options) and never hold the value
 * given; an unknown key is the one part that is the caller's, so it is quoted (clipped, redacted).
 */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `unknown field${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.slice(0, 5).map((k) => quote(k, 32)).join(", ")}`;
  return issue.message.length > 200 ? `${issue.message.slice(0, 200)}…` : issue.message;
}

/**
 * A field the schema let through but a later check refuses (an amount above the maximum in the
 * wallet's asset, an asset a network does not carry). Its path is relative to the operation's
 * input (`amount`, `destination.network`); `execute` names where it came from (`body.amount`,
 * `payload.amount`), so every field error has one form, whichever check found it.
 */
export class FieldError extends CofferError {
  constructor(
    readonly field: string,
    readonly reason: string,
    code: ErrorCode = "VALIDATION_FAILED",
  ) {
    super(code, `${field}: ${reason}`, { errors: [{ path: field, message: reason }] });
  }

  /** The same refusal, its path prefixed with where the field came from, worded as `parse` words it. */
  from(where: string | Origin): CofferError {
    const origin = originOf(where);
    return invalid(where, [{ path: pathOf(origin, this.field.split(".")), message: this.reason }], this.code);
  }
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
