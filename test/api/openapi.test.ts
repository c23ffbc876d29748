import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { ERROR_STATUS } from "../../lib/errors";
import { buildOpenApi, openApiPath, pathParams } from "../../src/api/openapi";
import type { Operation } from "../../src/api/operation";
import { OPERATIONS } from "../../src/api/operations";
import * as outputs from "../../src/api/outputs";
import { startTestNode, type TestNode } from "../support/node";
import packageJson from "../../package.json";

/**
 * The OpenAPI document is generated from the operation table: it is valid OpenAPI 3.1, it has
 * exactly the table's routes, each described from the entry's own schemas (and each entry's
 * example is valid input), and it documents credentials, idempotency keys, pagination and every
 * error code. The node serves it to anyone.
 */
const doc = buildOpenApi() as any;
const METHODS = ["get", "post", "put", "patch", "delete"];

function operationIn(op: Operation): any {
  return doc.paths[openApiPath(op.path)]?.[op.method.toLowerCase()];
}

test("the document is valid OpenAPI 3.1", async () => {
  expect(doc.openapi).toBe("3.1.0");
  const validator = new Validator();
  const result = await validator.validate(doc);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(validator.version).toBe("3.1");
});

test("it lists exactly the table's routes, one operation each, named as in the table", () => {
  const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => METHODS.includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
  const table = OPERATIONS.map((op) => `${op.method} ${openApiPath(op.path)}`);
  expect(documented.sort()).toEqual([...table].sort());
  expect(new Set(documented).size).toBe(documented.length);
  for (const op of OPERATIONS) {
    const o = operationIn(op);
    expect(o.operationId).toBe(op.name);
    expect(o.summary).toBe(op.summary);
    expect(o.tags).toEqual([op.name.split(".")[0]]);
  }
});

test("every entry's example is valid input, and the document shows it as the request's example", () => {
  for (const op of OPERATIONS) {
    const parsed = op.input.safeParse(op.example);
    if (!parsed.success) throw new Error(`${op.name}: its example does not parse: ${parsed.error.message}`);
    const o = operationIn(op);
    const shown: Record<string, unknown> = {};
    for (const p of o.parameters) if (p.in === "path" || p.in === "query") if ("example" in p) shown[p.name] = p.example;
    Object.assign(shown, o.requestBody?.content["application/json"].example ?? {});
    expect(shown, op.name).toEqual(op.example as Record<string, unknown>);
  }
});

test("path parameters, query parameters and bodies come from the input schema", () => {
  for (const op of OPERATIONS) {
    const o = operationIn(op);
    const inPath = o.parameters.filter((p: any) => p.in === "path").map((p: any) => p.name);
    expect(inPath, op.name).toEqual(pathParams(op.path));
    for (const p of o.parameters.filter((p: any) => p.in === "path")) expect(p.required).toBe(true);
    if (op.method === "GET") expect(o.requestBody, op.name).toBeUndefined();
    else expect(o.parameters.filter((p: any) => p.in === "query"), op.name).toEqual([]);
    if (o.requestBody) {
      const schema = o.requestBody.content["application/json"].schema;
      expect(schema.type).toBe("object");
      for (const name of pathParams(op.path)) expect(schema.properties[name], `${op.name}: ${name} is in the path, not the body`).toBeUndefined();
    }
  }
  // A body field, a required one, and the strictness of bodies survive.
  const pay = doc.paths["/v1/wallets/{walletId}/payments"].post.requestBody;
  expect(pay.required).toBe(true);
  expect(pay.content["application/json"].schema).toMatchObject({ required: ["amount"], additionalProperties: false });
});

test("each success answer is the entry's output schema, and errors are problem+json", () => {
  const names = new Map<unknown, string>(Object.entries(outputs).map(([name, schema]) => [schema, name]));
  expect(doc.components.schemas.Problem).toBeDefined();
  for (const op of OPERATIONS) {
    const o = operationIn(op);
    const success = o.responses[String(op.status)];
    const name = names.get(op.output);
    if (name) expect(success.content["application/json"].schema, op.name).toEqual({ $ref: `#/components/schemas/${name}` });
    else expect(success.content["application/json"].schema, op.name).toBeObject();
    for (const status of [400, 401, 403, 429, 500, 503]) expect(o.responses[String(status)], `${op.name} ${status}`).toEqual({ $ref: `#/components/responses/Error${status}` });
    if (pathParams(op.path).length) expect(o.responses["404"], op.name).toBeDefined();
  }
  for (const [key, response] of Object.entries(doc.components.responses as Record<string, any>)) {
    expect(response.content["application/problem+json"].schema, key).toEqual({ $ref: "#/components/schemas/Problem" });
  }
  // Money out can be refused for the money (409) and a key reused for another request (422).
  expect(Object.keys(doc.paths["/v1/wallets/{walletId}/payments"].post.responses)).toEqual(expect.arrayContaining(["409", "422"]));
});

test("every error code appears with its status", () => {
  const description: string = doc.info.description;
  const problemCodes: string[] = doc.components.schemas.Problem.properties.code.enum;
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    const row = description.split("\n").find((line) => line.startsWith(`| ${status} |`));
    expect(row, `${code}: no row for ${status}`).toBeDefined();
    expect(row, code).toContain(`\`${code}\``);
    expect(problemCodes).toContain(code);
    const response = doc.components.responses[`Error${status}`];
    expect(response?.description, `${code}: no Error${status} response`).toContain(`\`${code}\``);
  }
});

test("both credentials and the Idempotency-Key header are documented", () => {
  expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
  expect(doc.components.securitySchemes.bearerAuth.description).toContain("Bearer cof_");
  expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: "apiKey", in: "header", name: "X-Api-Key" });
  expect(doc.security).toEqual([{ bearerAuth: [] }, { apiKey: [] }]);
  expect(doc.components.parameters.IdempotencyKey).toMatchObject({ name: "Idempotency-Key", in: "header", required: true });
  for (const op of OPERATIONS) {
    const refs = operationIn(op).parameters.filter((p: any) => p.$ref === "#/components/parameters/IdempotencyKey");
    expect(refs.length, op.name).toBe(op.idempotent ? 1 : 0);
  }
});

test("cursor pagination is documented on the paginated lists", () => {
  const paged = OPERATIONS.filter((op) => op.method === "GET" && pathParamsAndQuery(op).includes("cursor"));
  expect(paged.map((op) => op.name).sort()).toEqual(["admin.alerts.list", "admin.dlq.list", "admin.payouts.list", "admin.transactions.list", "chamas.audit", "chamas.list", "chamas.withdrawals.list", "wallets.list", "wallets.transactions.list", "webhooks.endpoints.deliveries.list", "webhooks.endpoints.list"]);
  for (const op of paged) {
    const o = operationIn(op);
    const query = Object.fromEntries(o.parameters.filter((p: any) => p.in === "query").map((p: any) => [p.name, p]));
    expect(query.limit.description, op.name).toContain("1 to 200");
    expect(query.cursor.description, op.name).toContain("nextCursor");
    expect(o.description).toContain("nextCursor");
    const ref: string = o.responses["200"].content["application/json"].schema.$ref;
    const page = doc.components.schemas[ref.split("/").pop()!];
    expect(page.required, op.name).toEqual(["items", "nextCursor"]);
  }
});

function pathParamsAndQuery(op: Operation): string[] {
  return operationIn(op).parameters.map((p: any) => p.name);
}

test("info.version is the package's version", () => {
  expect(doc.info.version).toBe(packageJson.version);
});

describe("served by the node", () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode("openapi", { RATE_LIMITS: "on", RATE_IP_PER_MINUTE: "8" });
  });
  afterAll(async () => {
    await t?.stop();
  });

  test("/openapi.json needs no credential, and the routes it describes still do", async () => {
    const res = await fetch(`${t.baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(doc)));
    const again = await fetch(`${t.baseUrl}/openapi.json`, { headers: { "if-none-match": res.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect((await fetch(`${t.baseUrl}/v1/api-keys`)).status).toBe(401);
    expect((await fetch(`${t.baseUrl}/docs/anything-else`)).status).toBe(404);
  });

  test("it is still limited per address", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`${t.baseUrl}/openapi.json`)).status);
    expect(statuses).toContain(429);
  });
});
