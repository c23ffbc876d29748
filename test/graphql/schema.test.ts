import { describe, expect, test } from "bun:test";
import { getNamedType, GraphQLError, GraphQLObjectType, isInputObjectType, isObjectType, type GraphQLNamedType, type GraphQLType } from "graphql";
import { z } from "zod";
import { CofferError } from "../../lib/errors";
import { maskError } from "../../src/graphql/server";
import { ok, operation } from "../../src/api/operation";
import { OPERATIONS, operationNamed } from "../../src/api/operations";
import { buildSchema, DecimalScalar, fieldNameOf, FRIENDLY_MUTATIONS, FRIENDLY_QUERIES } from "../../src/graphql/schema";

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
