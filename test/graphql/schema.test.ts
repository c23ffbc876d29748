import { describe, expect, test } from "bun:test";
import { getNamedType, GraphQLError, GraphQLObjectType, isInputObjectType, isObjectType, type GraphQLNamedType, type GraphQLType } from "graphql";
import { z } from "zod";
import { CofferError } from "../../lib/errors";
import { maskError } from "../../src/graphql/server";
import { ok, operation } from "../../src/api/operation";
import { OPERATIONS, operationNamed } from "../../src/api/operations";
import { buildSchema, connectionOf, DecimalScalar, fieldNameOf, FRIENDLY_MUTATIONS, FRIENDLY_QUERIES } from "../../src/graphql/schema";

/** The schema is the operation table's: every entry a field, money a Decimal, nothing written per operation. */
const schema = buildSchema();
const query = schema.getQueryType()!;
const mutation = schema.getMutationType()!;
const namedOf = (type: GraphQLType): string => getNamedType(type)!.name;

describe("built from the operation table", () => {
  test("every operation is a field: GET ones of Query, POST ones of Mutation, named in camelCase", () => {
    expect(fieldNameOf("wallets.payments.create")).toBe("walletsPaymentsCreate");
    expect(fieldNameOf("api-keys.list")).toBe("apiKeysList");
    for (const op of OPERATIONS) {
      const root = op.method === "GET" ? query : mutation;
      expect(root.getFields()[fieldNameOf(op.name)], op.name).toBeDefined();
      // Every change takes its own idempotency key.
      if (op.idempotent) expect(root.getFields()[fieldNameOf(op.name)]!.args.some((a) => a.name === "idempotencyKey"), op.name).toBe(true);
    }
  });

  test("the friendly names name only real operations, each of the right kind, and are fields", () => {
    for (const [friendly, name] of Object.entries(FRIENDLY_QUERIES)) {
      expect(operationNamed(name)?.method, `${friendly} → ${name}`).toBe("GET");
      expect(query.getFields()[friendly]).toBeDefined();
    }
    for (const [friendly, name] of Object.entries(FRIENDLY_MUTATIONS)) {
      expect(operationNamed(name)?.method, `${friendly} → ${name}`).toBe("POST");
      expect(mutation.getFields()[friendly]).toBeDefined();
    }
    expect(Object.keys(FRIENDLY_QUERIES)).toEqual(expect.arrayContaining(["wallet", "wallets", "transactions", "withdrawal", "transfer", "deposit", "chama"]));
    expect(Object.keys(FRIENDLY_MUTATIONS)).toEqual(
      expect.arrayContaining(["createWallet", "credit", "pay", "deposit", "withdraw", "transfer", "refund", "freezeWallet", "unfreezeWallet", "closeWallet"]),
    );
  });

  test("a new operation appears with no edit to src/graphql", () => {
    const extra = operation({
      name: "tests.things.get",
      method: "GET",
      path: "/v1/things/:thingId",
      summary: "a thing",
      input: z.strictObject({ thingId: z.uuid() }),
      output: z.object({ id: z.uuid(), amount: z.string().regex(/^-?[0-9]+(\.[0-9]+)?$/) }),
      status: 200,
      action: "wallet.read",
      tier: "standard",
      idempotent: false,
      example: { thingId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b" },
      run: () => ok({}),
    });
    const fields = buildSchema([...OPERATIONS, extra]).getQueryType()!.getFields();
    expect(fields.testsThingsGet).toBeDefined();
    expect(fields.testsThingsGet!.args.map((a) => String(a.type))).toEqual(["ID!"]);
  });
});

describe("connections and ids (the friendly and nested reads)", () => {
  const args = (field: { args: readonly { name: string; type: unknown }[] }) => Object.fromEntries(field.args.map((a) => [a.name, String(a.type)]));

  test("the friendly lists are connections with first/after in place of limit/cursor; the generated fields keep REST's shape", () => {
    const fields = query.getFields();
    expect(args(fields.wallets!)).toEqual({ ownerId: "String", first: "Int", after: "String" });
    expect(args(fields.transactions!)).toEqual({ walletId: "ID!", first: "Int", after: "String" });
    expect(args(fields.chamas!)).toEqual({ memberId: "String", first: "Int", after: "String" });
    for (const name of ["wallets", "transactions", "chamas"]) {
      const type = getNamedType(fields[name]!.type) as GraphQLObjectType;
      expect(type.name, name).toEndWith("Connection");
      expect(Object.keys(type.getFields())).toEqual(["edges", "pageInfo"]);
      const edge = getNamedType(type.getFields().edges!.type) as GraphQLObjectType;
      expect(Object.keys(edge.getFields())).toEqual(["node", "cursor"]);
      expect(String(edge.getFields().cursor!.type)).toBe("String");
    }
    const pageInfo = schema.getType("PageInfo") as GraphQLObjectType;
    expect(Object.fromEntries(Object.values(pageInfo.getFields()).map((f) => [f.name, String(f.type)]))).toEqual({
      hasNextPage: "Boolean!",
      hasPreviousPage: "Boolean!",
      startCursor: "String",
      endCursor: "String",
    });
    expect(args(fields.walletsList!)).toEqual({ ownerId: "String", limit: "Int", cursor: "ID" });
    expect(Object.keys((getNamedType(fields.walletsList!.type) as GraphQLObjectType).getFields())).toEqual(["items", "nextCursor"]);
  });

  test("the friendly single reads take id; the generated ones REST's names", () => {
    const fields = query.getFields();
    for (const [friendly, param] of [["wallet", "walletId"], ["withdrawal", "withdrawalId"], ["transfer", "transferId"], ["deposit", "depositId"], ["chama", "chamaId"]] as const) {
      expect(args(fields[friendly]!), friendly).toEqual({ id: "ID!" });
      expect(args(fields[fieldNameOf(FRIENDLY_QUERIES[friendly]!)]!), friendly).toEqual({ [param]: "ID!" });
    }
  });

  test("nested reads: paged ones are connections; a chama has its members (a count, REST's) and membersList, withdrawals and audit", () => {
    const wallet = getNamedType(query.getFields().wallet!.type) as GraphQLObjectType;
    expect(getNamedType(wallet.getFields().transactions!.type).name).toBe("TransactionConnection");
    expect(args(wallet.getFields().transactions!)).toEqual({ first: "Int", after: "String" });
    const chama = getNamedType(query.getFields().chama!.type) as GraphQLObjectType;
    const f = chama.getFields();
    expect(namedOf(f.members!.type)).toBe("Float");
    expect(namedOf(f.membersList!.type)).toBe("MemberList");
    expect(namedOf(f.withdrawals!.type)).toBe("ChamaWithdrawalConnection");
    expect(args(f.withdrawals!)).toEqual({ status: "ChamaWithdrawalViewStatus", first: "Int", after: "String" });
    expect(namedOf(f.audit!.type)).toBe("AuditConnection");
  });

  test("generic: a new gettable object with a paged child list gets a connection, with no edit to src/graphql", () => {
    const common = { status: 200, action: "wallet.read", tier: "standard", idempotent: false, run: () => ok({}) } as const;
    const thing = operation({
      ...common,
      name: "tests.things.get",
      method: "GET",
      path: "/v1/things/:thingId",
      summary: "a thing",
      input: z.strictObject({ thingId: z.uuid() }),
      output: z.object({ id: z.uuid(), label: z.string() }),
      example: { thingId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b" },
    });
    const parts = operation({
      ...common,
      name: "tests.things.parts.list",
      method: "GET",
      path: "/v1/things/:thingId/parts",
      summary: "a thing's parts",
      input: z.strictObject({ thingId: z.uuid(), limit: z.number().int().min(1).max(200).default(50), cursor: z.string().optional() }),
      output: z.object({ items: z.array(z.object({ partNo: z.string() })), nextCursor: z.string().nullable() }),
      example: { thingId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b" },
    });
    const built = buildSchema([...OPERATIONS, thing, parts]).getQueryType()!.getFields();
    expect(args(built.testsThingsPartsList!)).toEqual({ thingId: "ID!", limit: "Int", cursor: "String" });
    const thingType = getNamedType(built.testsThingsGet!.type) as GraphQLObjectType;
    const nested = thingType.getFields().parts!;
    expect(args(nested)).toEqual({ first: "Int", after: "String" });
    const connection = getNamedType(nested.type) as GraphQLObjectType;
    expect(Object.keys(connection.getFields())).toEqual(["edges", "pageInfo"]);
  });

  test("a page becomes edges: only the last carries the page's cursor", () => {
    expect(connectionOf({ items: [{ a: 1 }, { a: 2 }, { a: 3 }], nextCursor: "c3" })).toEqual({
      edges: [
        { node: { a: 1 }, cursor: null },
        { node: { a: 2 }, cursor: null },
        { node: { a: 3 }, cursor: "c3" },
      ],
      pageInfo: { hasNextPage: true, hasPreviousPage: false, startCursor: null, endCursor: "c3" },
    });
    expect(connectionOf({ items: [{ a: 1 }], nextCursor: null })).toEqual({
      edges: [{ node: { a: 1 }, cursor: null }],
      pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
    });
    expect(connectionOf({ items: [], nextCursor: null }).edges).toEqual([]);
  });
});

describe("types from the zod schemas", () => {
  test("money is a Decimal everywhere (never a Float), ids are IDs, a destination is JSON", () => {
    const pay = mutation.getFields().pay!;
    expect(Object.fromEntries(pay.args.map((a) => [a.name, String(a.type)]))).toEqual({ walletId: "ID!", amount: "Decimal!", reference: "String", idempotencyKey: "String" });
    const withdraw = mutation.getFields().withdraw!;
    expect(String(withdraw.args.find((a) => a.name === "destination")!.type)).toBe("JSON!");
    const wallet = getNamedType(query.getFields().wallet!.type) as GraphQLObjectType;
    const balance = getNamedType(wallet.getFields().balance!.type) as GraphQLObjectType;
    expect(String(balance.getFields().available!.type)).toBe("Decimal!");
    expect(String(wallet.getFields().id!.type)).toBe("ID!");
    // No field or argument that carries an amount is a Float, anywhere in the schema.
    const moneyish = /^(amount|balance|posted|held|available|debt|received|refunded|contributed|withdrawn|maxPer\w*|balanceAfter)$/;
    for (const type of Object.values(schema.getTypeMap()) as GraphQLNamedType[]) {
      if (type.name.startsWith("__")) continue;
      if (isObjectType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (moneyish.test(field.name)) expect(namedOf(field.type), `${type.name}.${field.name}`).not.toBe("Float");
          for (const arg of "args" in field ? field.args : []) if (moneyish.test(arg.name)) expect(namedOf(arg.type), `${type.name}.${field.name}(${arg.name})`).toBe("Decimal");
        }
      }
    }
  });

  test("the Decimal scalar takes strings only", () => {
    expect(DecimalScalar.parseValue("12.34")).toBe("12.34");
    expect(() => DecimalScalar.parseValue(12.34)).toThrow(/never a number/);
    expect(DecimalScalar.serialize("1.50")).toBe("1.50");
  });
});

describe("errors", () => {
  test("an internal error is 'something went wrong' with code INTERNAL: no stack, SQL or message of its own", () => {
    const internal = new Error('relation "ledger" does not exist: SELECT * FROM ledger');
    const masked = maskError(new GraphQLError(internal.message, { originalError: internal, path: ["pay"] })) as GraphQLError;
    expect(masked.message).toBe("something went wrong");
    expect(masked.extensions).toEqual({ code: "INTERNAL", status: 500 });
    expect(JSON.stringify(masked.toJSON())).not.toMatch(/ledger|SELECT|stack/);
  });

  test("a refusal keeps its stable code, status and detail", () => {
    const refusal = new CofferError("INSUFFICIENT_FUNDS", "the available balance does not cover this amount");
    const masked = maskError(new GraphQLError(refusal.message, { originalError: refusal })) as GraphQLError;
    expect(masked.message).toBe("the available balance does not cover this amount");
    expect(masked.extensions).toEqual({ code: "INSUFFICIENT_FUNDS", status: 409 });
  });
});
