import { readFileSync } from "node:fs";
import { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../../lib/errors";
import type { Operation } from "./operation";
import { OPERATIONS } from "./operations";
import * as outputs from "./outputs";
import * as adminOutputs from "../admin/outputs";

/**
 * The OpenAPI 3.1 document, generated from the operation table (src/api/operations/): one path
 * item per operation, its input and output from the same zod schemas the transports validate with
 * (zod's own JSON Schema output: inputs as callers send them, `io: "input"`, outputs as we answer,
 * `io: "output"`). Nothing here is written by hand per operation, so the document cannot drift
 * from what the node serves. Served at /openapi.json (src/http/docs.ts).
 */
export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, Record<string, OpenApiOperation>> };
type Json = Record<string, any>;
interface OpenApiOperation extends Json {
  operationId: string;
}

const PROBLEM_JSON = "application/problem+json";
const SCHEMAS = "#/components/schemas/";

/** Every error status an operation may answer with, and when. */
const ERROR_RESPONSES: Record<number, string> = {
  400: "The request is malformed: a field is missing or wrong, or the Idempotency-Key header is missing.",
  401: "No valid credential.",
  403: "The credential may not do this.",
  404: "The object does not exist, or the caller may not know it does.",
  409: "Refused by the object's current state (nothing changed).",
  413: "The body is too large.",
  422: "The request is well formed but cannot be done, or the Idempotency-Key was used for another request.",
  429: "Too many requests: wait `retryAfter` seconds (the Retry-After header says the same).",
  500: "Something went wrong on our side (logged).",
  503: "The node or the ledger is unavailable or overloaded: retry with the same Idempotency-Key after the Retry-After header's seconds.",
};

const TAGS: Record<string, string> = {
  wallets: "Personal wallets: open one, read its balance and postings, credit, pay, withdraw, freeze and close it.",
  withdrawals: "Withdrawals from wallets: read one and take it through processing, completion, failure or cancellation.",
  transfers: "Money moved from one wallet to another (a saga that settles or voids in the background).",
  chamas: "Group wallets: members, rules, deposits, and withdrawals that need the admins' approvals.",
  "api-keys": "API keys for services (platform admins).",
  webhooks: "Webhooks out: endpoints that receive Coffer's events, signed (Coffer-Signature), in order per wallet, with their delivery logs.",
  admin: "What operators look at: the cluster, the books, a live actor, transactions, stats and health, and transaction monitoring: its alerts, rules and held withdrawals (admins; auditors read).",
};

function tagOf(op: Operation): string {
  return op.name.split(".")[0]!;
}

/** The `:params` of a REST path, in order. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
}

/** `/v1/wallets/:walletId` → `/v1/wallets/{walletId}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

/**
 * Cleans what zod emits for embedding in the document: no `$schema`/`$id` (the document's dialect
 * applies), and no long regular expressions where a `format` already says it (uuid, date-time), nor
 * JavaScript's safe-integer bounds on every integer.
 */
function tidy(ctx: { jsonSchema: Json }): void {
  const s = ctx.jsonSchema;
  if ((s.format === "uuid" || s.format === "date-time") && typeof s.pattern === "string") delete s.pattern;
  if (s.type === "integer") {
    if (s.minimum === Number.MIN_SAFE_INTEGER) delete s.minimum;
    if (s.maximum === Number.MAX_SAFE_INTEGER) delete s.maximum;
  }
}

function strip(schema: Json): Json {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** An input schema as callers send it (before transforms and defaults). */
function inputJson(schema: z.ZodType): Json {
  return strip(z.toJSONSchema(schema, { io: "input", unrepresentable: "any", override: tidy }) as Json);
}

/** The named output schemas of outputs.ts (and src/admin/outputs.ts), as components; operations refer to them by name. */
function outputComponents(): { schemas: Record<string, Json>; names: Map<z.ZodType, string> } {
  const registry = z.registry<{ id: string }>();
  const names = new Map<z.ZodType, string>();
  // The admin API's (src/admin/outputs.ts) beside the resources' own.
  for (const [name, value] of [...Object.entries(outputs), ...Object.entries(adminOutputs)]) {
    if (value instanceof z.ZodType) {
      registry.add(value, { id: name });
      names.set(value, name);
    }
  }
  const generated = z.toJSONSchema(registry, { io: "output", unrepresentable: "any", override: tidy, uri: (id) => `${SCHEMAS}${id}` });
  const schemas: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(generated.schemas)) schemas[name] = strip(schema as Json);
  return { schemas, names };
}

function errorCodesByStatus(): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, status] of Object.entries(ERROR_STATUS) as [ErrorCode, number][]) byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  return byStatus;
}

/** The error statuses an operation can answer with (beyond its success). */
export function errorStatusesOf(op: Operation): number[] {
  const statuses = [400, 401, 403, 429, 500, 503];
  const actsOnObject = pathParams(op.path).length > 0 || op.ownedBy !== undefined;
  if (actsOnObject) statuses.push(404);
  if (op.method === "POST") statuses.push(413);
  // API keys are not actors: they have no idempotent replay (so no conflict) and no business rules,
  // but a key that exists can be in the wrong state (rotating a revoked key).
  const viaActor = tagOf(op) !== "api-keys";
  if (op.idempotent && (viaActor || actsOnObject)) statuses.push(409);
  if (op.idempotent && viaActor) statuses.push(422);
  return statuses.sort((a, b) => a - b);
}

function isPaged(op: Operation, input: Json): boolean {
  return op.method === "GET" && input.properties?.limit !== undefined && input.properties?.cursor !== undefined;
}

function describeOperation(op: Operation, paged: boolean): string {
  return [
    op.summary + ".",
    "",
    `- Policy action: \`${op.action}\`${op.ownedBy ? ` (users: only on their own ${op.ownedBy})` : ""}.`,
    `- Rate-limit tier: \`${op.tier}\`${op.tier === "money" ? " (the stricter per-caller limit for money leaving a wallet or chama, on top of the standard one)" : ""}.`,
    op.idempotent
      ? "- Needs an `Idempotency-Key` header: the same key with the same request replays the first answer; with another request it is `422 IDEMPOTENCY_CONFLICT`."
      : "- A read: no Idempotency-Key needed.",
    `- Also over NATS: request-reply on \`<prefix>.v1.${op.name}\` with the whole input (path, ${op.method === "GET" ? "query" : "body"} fields) as one JSON object.`,
    ...(paged ? ["- Paginated: pass `limit` (1 to 200, default 50) and, for the next page, `cursor` = the previous answer's `nextCursor` (null on the last page)."] : []),
  ].join("\n");
}

const PARAM_HINTS: Record<string, string> = {
  limit: "page size, 1 to 200 (default 50)",
  cursor: "the `nextCursor` of the previous page; absent for the first page",
};

function operationObject(op: Operation, names: Map<z.ZodType, string>, output: (schema: z.ZodType) => Json): OpenApiOperation {
  const input = inputJson(op.input);
  const properties: Record<string, Json> = input.properties ?? {};
  const required = new Set<string>(input.required ?? []);
  const example = (op.example ?? {}) as Record<string, unknown>;
  const inPath = new Set(pathParams(op.path));
  const paged = isPaged(op, input);

  const parameters: Json[] = [];
  for (const name of inPath) {
    parameters.push({ name, in: "path", required: true, schema: properties[name] ?? { type: "string" }, ...(name in example ? { example: example[name] } : {}) });
  }
  if (op.method === "GET") {
    for (const [name, schema] of Object.entries(properties)) {
      if (inPath.has(name)) continue;
      const hint = paged ? PARAM_HINTS[name] : undefined;
      parameters.push({
        name,
        in: "query",
        required: required.has(name),
        schema,
        ...(hint ? { description: hint } : schema.description ? { description: schema.description } : {}),
        ...(name in example ? { example: example[name] } : {}),
      });
    }
  }
  if (op.idempotent) parameters.push({ $ref: "#/components/parameters/IdempotencyKey" });

  let requestBody: Json | undefined;
  if (op.method === "POST") {
    const bodyProperties = Object.fromEntries(Object.entries(properties).filter(([name]) => !inPath.has(name)));
    if (Object.keys(bodyProperties).length > 0) {
      const bodyRequired = [...required].filter((name) => !inPath.has(name));
      const { properties: _p, required: _r, ...rest } = input;
      const schema = { ...rest, type: "object", properties: bodyProperties, ...(bodyRequired.length ? { required: bodyRequired } : {}) };
      const bodyExample = Object.fromEntries(Object.entries(example).filter(([name]) => !inPath.has(name)));
      requestBody = {
        required: bodyRequired.length > 0,
        content: { "application/json": { schema, ...(Object.keys(bodyExample).length ? { example: bodyExample } : {}) } },
      };
    }
  }

  const name = names.get(op.output);
  const responses: Json = {
    [String(op.status)]: {
      description: name ? `${op.status === 201 ? "Done" : "OK"}: ${name}` : op.status === 201 ? "Done" : "OK",
      content: { "application/json": { schema: output(op.output) } },
    },
  };
  for (const status of errorStatusesOf(op)) responses[String(status)] = { $ref: `#/components/responses/Error${status}` };

  return {
    operationId: op.name,
    summary: op.summary,
    description: describeOperation(op, paged),
    tags: [tagOf(op)],
    parameters,
    ...(requestBody ? { requestBody } : {}),
    responses,
    "x-coffer-action": op.action,
    "x-coffer-tier": op.tier,
    ...(paged ? { "x-coffer-pagination": { limit: "limit", cursor: "cursor", next: "nextCursor", items: "items" } } : {}),
  };
}

function errorTable(byStatus: Map<number, ErrorCode[]>): string {
  const rows = [...byStatus.entries()].sort(([a], [b]) => a - b).map(([status, codes]) => `| ${status} | ${codes.map((code) => `\`${code}\``).join(", ")} |`);
  return ["| status | codes |", "|---|---|", ...rows].join("\n");
}

const DESCRIPTION = (version: string, errors: string) => `Coffer ${version}: personal wallets and group wallets ("chamas") on a double-entry ledger.

**Credentials.** Every operation needs one: an access token (\`Authorization: Bearer <JWT>\`) or an API key
(\`X-Api-Key: cof_…\`, or the same key as \`Authorization: Bearer cof_…\`).

**Amounts** are decimal strings in the asset's major unit ("12.34"), exact: at most the asset's decimals
(USD, EUR, KES 2; BTC 8; ETH 18; USDC 6; SOL 9; NEAR 24; TON 9); more is a 400, never a rounding.

**Changes are idempotent.** Every POST needs an \`Idempotency-Key\` header (1 to 255 printable ASCII
characters). The same key with the same request replays the first status and body (for at least 24 h):
retrying after a network error or a 503 can never move money twice. The same key with a different
request is \`422 IDEMPOTENCY_CONFLICT\`.

**Pagination.** Lists take \`limit\` (1 to 200, default 50) and \`cursor\`, and answer \`{items, nextCursor}\`:
pass \`nextCursor\` as \`cursor\` for the next page; it is null on the last one.

**Every operation is also on NATS** (request-reply on \`<prefix>.v1.<operationId>\`, the whole input as one
JSON object), with the same answers and error codes.

**Errors** are RFC 9457 \`application/problem+json\` bodies (the \`Problem\` schema) with a stable \`code\`.
Every code and its status:

${errors}
`;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** Builds the whole document from the table (pure: call once and keep it). */
export function buildOpenApi(operations: readonly Operation[] = OPERATIONS): OpenApiDocument {
  const version = packageVersion();
  const { schemas, names } = outputComponents();
  // An output that is not a named schema of outputs.ts is inlined.
  const output = (schema: z.ZodType): Json => {
    const name = names.get(schema);
    return name ? { $ref: `${SCHEMAS}${name}` } : strip(z.toJSONSchema(schema, { io: "output", unrepresentable: "any", override: tidy }) as Json);
  };
  const byStatus = errorCodesByStatus();

  const paths: Record<string, Record<string, OpenApiOperation>> = {};
  for (const op of operations) {
    const item = (paths[openApiPath(op.path)] ??= {});
    item[op.method.toLowerCase()] = operationObject(op, names, output);
  }

  const responses: Record<string, Json> = {};
  // A status a new error code brings gets its response too (described by its codes alone).
  const statuses = [...new Set([...Object.keys(ERROR_RESPONSES).map(Number), ...byStatus.keys()])].sort((a, b) => a - b);
  for (const status of statuses) {
    const codes = byStatus.get(status) ?? [];
    responses[`Error${status}`] = {
      description: `${ERROR_RESPONSES[status] ?? "Refused."}${codes.length ? ` Codes: ${codes.map((c) => `\`${c}\``).join(", ")}.` : ""}`,
      ...(status === 401 ? { headers: { "WWW-Authenticate": { schema: { type: "string" }, description: 'Bearer realm="coffer"' } } } : {}),
      ...(status === 429 || status === 503 ? { headers: { "Retry-After": { schema: { type: "integer" }, description: "seconds to wait" } } } : {}),
      content: { [PROBLEM_JSON]: { schema: { $ref: `${SCHEMAS}Problem` }, ...(codes[0] ? { example: exampleProblem(codes[0]) } : {}) } },
    };
  }

  const usedTags = [...new Set(operations.map(tagOf))];
  return {
    openapi: "3.1.0",
    info: {
      title: "Coffer",
      version,
      description: DESCRIPTION(version, errorTable(byStatus)),
    },
    servers: [{ url: "/", description: "this node" }],
    tags: usedTags.map((name) => ({ name, ...(TAGS[name] ? { description: TAGS[name] } : {}) })),
    security: [{ bearerAuth: [] }, { apiKey: [] }],
    paths,
    components: {
      schemas,
      parameters: {
        IdempotencyKey: {
          name: "Idempotency-Key",
          in: "header",
          required: true,
          description: "Makes the change safe to retry: the same key with the same request replays the first answer (for at least 24 h). Make a new one per change and reuse it on every retry of that change.",
          schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7e]+$" },
          example: "7b0e2c52-3f4a-4c1e-9d2b-5a6f7e8d9c0b",
        },
      },
      responses,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "An access token (`bun run coffer token …`). An API key also works here: `Authorization: Bearer cof_…`.",
        },
        apiKey: { type: "apiKey", in: "header", name: "X-Api-Key", description: "A service's API key (`cof_…`), issued with POST /v1/api-keys." },
      },
    },
  };
}

function exampleProblem(code: ErrorCode): Json {
  return {
    type: `https://coffer.dev/problems/${code.toLowerCase().replaceAll("_", "-")}`,
    title: code.replaceAll("_", " ").toLowerCase(),
    status: ERROR_STATUS[code],
    code,
    detail: "what went wrong, in a sentence",
    instance: "/v1/wallets/0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b",
  };
}

let cached: { document: OpenApiDocument; json: string } | undefined;

/** The document for this process, built on first use and kept (the table does not change at run time). */
export function openApiDocument(): { document: OpenApiDocument; json: string } {
  if (!cached) {
    const document = buildOpenApi();
    cached = { document, json: JSON.stringify(document) };
  }
  return cached;
}
