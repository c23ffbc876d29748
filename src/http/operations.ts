import type { Context, Hono } from "hono";
import { z } from "zod";
import { CofferError } from "../../lib/errors";
import { execute, type Limits } from "../api/execute";
import { parseJson } from "../api/input";
import type { Operation, OperationDeps } from "../api/operation";
import { OPERATIONS } from "../api/operations";
import { callerOf } from "./auth";
import { withOwnerHint } from "./owner-hint";
import { send } from "./respond";

/**
 * The REST API: one route per operation of the table (src/api/operations/). A route gathers what
 * the caller gave (path parameters, and the query for a GET or the JSON body for a POST) into one
 * input and hands it to `execute`, which every transport shares.
 */
export function registerOperations(app: Hono, deps: OperationDeps, limits: Limits): void {
  for (const op of OPERATIONS) {
    app.on(op.method, op.path, async (c) => withOwnerHint(c, deps.cluster !== undefined, async () => send(c, await execute(op, deps, limits, await requestOf(c, op)))));
  }
}

async function requestOf(c: Context, op: Operation) {
  const params = c.req.param() as Record<string, string>;
  const given = op.method === "GET" ? c.req.query() : await bodyOf(c);
  const from = op.method === "GET" ? "query" : "body";
  for (const name of Object.keys(params)) {
    if (Object.hasOwn(given, name)) {
      const message = `${name} belongs in the path, not in the ${from}`;
      throw new CofferError("VALIDATION_FAILED", `invalid input: ${from}.${name}: ${message}`, { errors: [{ path: `${from}.${name}`, message }] });
    }
  }
  return {
    caller: callerOf(c),
    key: c.req.header("idempotency-key"),
    input: { ...given, ...params },
    origin: (field: string) => (Object.hasOwn(params, field) ? "path" : from),
  };
}

/** The JSON body as an object; none at all counts as `{}` (the operation's schema says what is required). */
async function bodyOf(c: Context): Promise<Record<string, unknown>> {
  const value = parseJson(await c.req.text(), OBJECT, { optional: true, accept: isObject });
  return value ?? {};
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);


/**
 * A JSON object, kept as parsed: a schema that copies it (z.record) would turn an own `__proto__`
 * key into a prototype and hide it from the operation's strict schema.
 */
const OBJECT = z.custom<Record<string, unknown>>(isObject, "expected a JSON object").optional();
