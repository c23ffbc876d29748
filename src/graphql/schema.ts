import {
  GraphQLBoolean,
  GraphQLEnumType,
  GraphQLError,
  GraphQLFloat,
  GraphQLID,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  Kind,
  valueFromASTUntyped,
  type GraphQLFieldConfig,
  type GraphQLFieldConfigArgumentMap,
  type GraphQLFieldConfigMap,
  type GraphQLInputType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
} from "graphql";
import { z } from "zod";
import type { Reply } from "../../actors/envelope";
import { CofferError, ERROR_STATUS, type ErrorCode } from "../../lib/errors";
import { execute, type Limits } from "../api/execute";
import type { Operation, OperationDeps } from "../api/operation";
import { OPERATIONS } from "../api/operations";
import * as outputs from "../api/outputs";
import * as depositOutputs from "../api/deposit-outputs";
import * as adminOutputs from "../admin/outputs";
import { AmountText } from "../api/schemas";
import { Money } from "../api/outputs";
import type { Caller } from "../api/wallet-service";
import { pathParams } from "../api/openapi";

/**
 * The GraphQL schema, generated from the operation table (src/api/operations/) and nothing else:
 * every GET operation is a Query field, every POST one a Mutation field, named from the operation's
 * name in camelCase (`wallets.payments.create` → `walletsPaymentsCreate`). Arguments and result
 * types come from the operation's zod schemas through their JSON Schema (as OpenAPI's do); what
 * GraphQL cannot say cleanly (unions, records) is a `JSON` scalar, still validated by the zod
 * schema in `execute`. Every resolver hands its arguments to `execute` with the caller REST would
 * have, so policy, ownership, rate-limit tiers, idempotency and error codes are REST's.
 *
 * The generated fields are REST's shape exactly (`walletsList(limit, cursor) { items nextCursor }`).
 * The friendly names and the nested reads are GraphQL's: a paged read (input with `limit` and
 * `cursor`, answer `{items, nextCursor}`) is a Relay connection (`first`, `after`, `edges { node
 * cursor }`, `pageInfo`), and a friendly read of one object takes its path parameter as `id`.
 */

/** What every resolver is given (src/graphql/server.ts builds it per request). */
export interface GraphQLContext {
  caller: Caller;
  deps: OperationDeps;
  limits: Limits;
  /** The request's Idempotency-Key header: used for a request with one mutation only. */
  headerKey: string | undefined;
  /** A batch (a JSON array of operations): the header key is not used. */
  batched: boolean;
}

/** Friendly names, aliases of the generated fields: friendly name → operation name. */
export const FRIENDLY_QUERIES: Record<string, string> = {
  wallet: "wallets.get",
  wallets: "wallets.list",
  transactions: "wallets.transactions.list",
  withdrawal: "withdrawals.get",
  transfer: "transfers.get",
  deposit: "deposits.get",
  chama: "chamas.get",
  chamas: "chamas.list",
};
export const FRIENDLY_MUTATIONS: Record<string, string> = {
  createWallet: "wallets.create",
  credit: "wallets.credits.create",
  pay: "wallets.payments.create",
  deposit: "wallets.deposits.create",
  withdraw: "wallets.withdrawals.create",
  transfer: "transfers.create",
  refund: "deposits.refunds.create",
  freezeWallet: "wallets.freeze",
  unfreezeWallet: "wallets.unfreeze",
  closeWallet: "wallets.close",
  createChama: "chamas.create",
  inviteToChama: "chamas.invitations.create",
  acceptChamaInvitation: "chamas.invitations.accept",
  addChamaMember: "chamas.members.add",
  removeChamaMember: "chamas.members.remove",
  changeChamaMemberRole: "chamas.members.role",
  changeChamaRules: "chamas.rules",
  chamaDeposit: "chamas.deposits.create",
  contributeToChama: "chamas.contributions.create",
  requestChamaWithdrawal: "chamas.withdrawals.create",
  approveChamaWithdrawal: "chamas.withdrawals.approve",
  rejectChamaWithdrawal: "chamas.withdrawals.reject",
};

/** `wallets.payments.create` → `walletsPaymentsCreate`, `api-keys.list` → `apiKeysList`. */
export function fieldNameOf(operationName: string): string {
  const [first = "", ...rest] = operationName.split(/[.\-_]/).filter(Boolean);
  return first + rest.map(pascal).join("");
}

const pascal = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);
const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const INT32_MAX = 2 ** 31 - 1;
/** A page's size when the caller gives none (PageLimit's default), and the largest it may be. */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 200;

// Scalars.

/** Money: a decimal string in the asset's major unit. Never a number: a Float would round it. */
export const DecimalScalar = new GraphQLScalarType({
  name: "Decimal",
  description: 'An exact decimal amount in the asset\'s major unit, carried as a string ("12.34"); never a number.',
  serialize(value) {
    if (typeof value === "string") return value;
    if (typeof value === "bigint") return value.toString();
    throw new GraphQLError("Decimal: not a decimal string");
  },
  parseValue(value) {
    if (typeof value !== "string") throw new GraphQLError('Decimal must be a string ("12.34"), never a number');
    return value;
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('Decimal must be a string ("12.34"), never a number', { nodes: ast });
    return ast.value;
  },
});

/** What GraphQL cannot type cleanly (unions such as a destination, records): any JSON, checked by the operation's zod schema. */
export const JsonScalar = new GraphQLScalarType({
  name: "JSON",
  description: "Any JSON value; its shape is checked by the operation's schema (see the REST reference, /docs).",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
});

type Json = Record<string, any>;

const MONEY_PATTERN = (z.toJSONSchema(Money) as Json).pattern as string;

function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): Json {
  // Without `$schema`, a schema at the root is the same text as where it is nested (one type for both).
  const { $schema: _s, $id: _i, ...json } = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
    cycles: "ref",
    reused: "inline",
    override(ctx) {
      // Amounts callers send are plain bounded strings (they become bigint once the asset is known).
      if (ctx.zodSchema === AmountText) ctx.jsonSchema["x-decimal"] = true;
    },
  }) as Json;
  return json;
}

/** Named output schemas (WalletView, …) keep their names as GraphQL types. */
const OUTPUT_NAMES = new Map<unknown, string>();
for (const [name, value] of [...Object.entries(outputs), ...Object.entries(depositOutputs), ...Object.entries(adminOutputs)]) {
  if (value instanceof z.ZodType && !OUTPUT_NAMES.has(value)) OUTPUT_NAMES.set(value, name);
}

/** Builds the schema; every call makes a fresh one from the table as it is. */
export function buildSchema(operations: readonly Operation[] = OPERATIONS): GraphQLSchema {
  const used = new Set<string>(["Query", "Mutation", "Decimal", "JSON"]);
  const uniqueName = (wanted: string) => {
    let name = wanted.replace(/[^_0-9A-Za-z]/g, "");
    if (!NAME.test(name)) name = `T${name}`;
    let candidate = name;
    for (let i = 2; used.has(candidate); i++) candidate = `${name}${i}`;
    used.add(candidate);
    return candidate;
  };
  const enums = new Map<string, GraphQLEnumType>();
  const inputs = new Map<string, GraphQLInputObjectType>();
  const objects = new Map<string, GraphQLObjectType>();
  /** Each object type's own fields (from its schema), before nested reads are added. */
  const own = new Map<string, GraphQLFieldConfigMap<any, GraphQLContext>>();
  /** Fields added to an object type after it is made (nested reads): type name → fields. */
  const extra = new Map<string, GraphQLFieldConfigMap<any, GraphQLContext>>();

  function nonNull(s: Json): Json | undefined {
    if (Array.isArray(s.type) && s.type.includes("null")) {
      const rest = s.type.filter((t: string) => t !== "null");
      return rest.length === 1 ? { ...s, type: rest[0] } : { ...s, type: undefined }; // several types: JSON
    }
    const branches = (s.anyOf ?? s.oneOf) as Json[] | undefined;
    if (!branches) return undefined;
    const rest = branches.filter((b) => b.type !== "null");
    if (rest.length === 1 && rest.length < branches.length) return rest[0];
    // A number or its spelling as a string (a page size): the number.
    const numeric = rest.find((b) => b.type === "integer" || b.type === "number");
    if (numeric && rest.every((b) => b === numeric || b.type === "string")) return numeric;
    return undefined;
  }

  function enumOf(s: Json, name: string): GraphQLEnumType | undefined {
    const values = s.enum as unknown[];
    if (!values.every((v) => typeof v === "string" && NAME.test(v) && !["true", "false", "null"].includes(v))) return undefined;
    const key = JSON.stringify(values);
    let type = enums.get(key);
    if (!type) {
      type = new GraphQLEnumType({ name: uniqueName(name), values: Object.fromEntries((values as string[]).map((v) => [v, { value: v }])) });
      enums.set(key, type);
    }
    return type;
  }

  function leaf(s: Json, name: string, io: "input" | "output"): GraphQLInputType & GraphQLOutputType | undefined {
    if (s.type === "string") {
      if (s.format === "uuid") return GraphQLID;
      if (s["x-decimal"] || s.pattern === MONEY_PATTERN) return DecimalScalar;
      if (Array.isArray(s.enum)) return enumOf(s, name) ?? GraphQLString;
      return GraphQLString;
    }
    if (s.const !== undefined && typeof s.const === "string") return GraphQLString;
    if (s.type === "integer") {
      // Int is 32 bits. An argument without a bound of its own is an Int (zod bounds it); an answer's
      // integer is one only when its schema says it fits, else a Float (never rounded: below 2^53).
      const unbounded = (s.maximum === undefined || s.maximum === Number.MAX_SAFE_INTEGER) && (s.minimum === undefined || s.minimum === Number.MIN_SAFE_INTEGER);
      const fits = typeof s.maximum === "number" && s.maximum <= INT32_MAX && typeof s.minimum === "number" && s.minimum >= -INT32_MAX - 1;
      return fits || (unbounded && io === "input") ? GraphQLInt : GraphQLFloat;
    }
    if (s.type === "number") return GraphQLFloat;
    if (s.type === "boolean") return GraphQLBoolean;
    return undefined;
  }

  function inputType(s: Json, name: string): { type: GraphQLInputType; nullable: boolean } {
    const inner = nonNull(s);
    if (inner) return { type: inputType(inner, name).type, nullable: true };
    const l = leaf(s, name, "input");
    if (l) return { type: l, nullable: false };
    if (s.type === "array" && s.items && !Array.isArray(s.items)) {
      const item = inputType(s.items, name);
      return { type: new GraphQLList(item.nullable ? item.type : new GraphQLNonNull(item.type)), nullable: false };
    }
    if (s.type === "object" && s.properties && Object.keys(s.properties).length && Object.keys(s.properties).every((k) => NAME.test(k))) {
      const key = JSON.stringify(s);
      let type = inputs.get(key);
      if (!type) {
        const fields = argsOf(s, name);
        type = new GraphQLInputObjectType({ name: uniqueName(`${name}Input`), fields: () => fields as any });
        inputs.set(key, type);
      }
      return { type, nullable: false };
    }
    return { type: JsonScalar, nullable: false };
  }

  /** An object schema's properties as arguments (or input fields): required ones non-null. */
  function argsOf(s: Json, name: string): GraphQLFieldConfigArgumentMap {
    const required = new Set<string>(s.required ?? []);
    const args: GraphQLFieldConfigArgumentMap = {};
    for (const [field, schema] of Object.entries((s.properties ?? {}) as Record<string, Json>)) {
      const { type } = inputType(schema, name + pascal(field));
      const mandatory = required.has(field) && schema.default === undefined && !nonNull(schema);
      args[field] = { type: mandatory ? new GraphQLNonNull(type) : type, ...(schema.description ? { description: schema.description } : {}) };
    }
    return args;
  }

  function outputType(s: Json, name: string, named?: string): { type: GraphQLOutputType; nullable: boolean } {
    const inner = nonNull(s);
    if (inner) return { type: outputType(inner, name).type, nullable: true };
    const l = leaf(s, name, "output");
    if (l) return { type: l, nullable: false };
    if (s.type === "array" && s.items && !Array.isArray(s.items)) {
      const item = outputType(s.items, name);
      return { type: new GraphQLList(item.nullable ? item.type : new GraphQLNonNull(item.type)), nullable: false };
    }
    if (s.type === "object" && s.properties && Object.keys(s.properties).length && Object.keys(s.properties).every((k) => NAME.test(k))) {
      const key = JSON.stringify(s);
      let type = objects.get(key);
      if (!type) {
        const typeName = uniqueName(named ?? name);
        const required = new Set<string>(s.required ?? []);
        const fields: GraphQLFieldConfigMap<any, GraphQLContext> = {};
        for (const [field, schema] of Object.entries(s.properties as Record<string, Json>)) {
          const out = outputType(schema, typeName + pascal(field));
          fields[field] = { type: required.has(field) && !out.nullable ? new GraphQLNonNull(out.type) : out.type, ...(schema.description ? { description: schema.description } : {}) };
        }
        own.set(typeName, fields);
        type = new GraphQLObjectType<any, GraphQLContext>({
          name: typeName,
          ...(s.description ? { description: s.description } : {}),
          fields: () => ({ ...fields, ...Object.fromEntries(Object.entries(extra.get(typeName) ?? {}).filter(([k]) => !(k in fields))) }),
        });
        objects.set(key, type);
      }
      return { type, nullable: false };
    }
    return { type: JsonScalar, nullable: false };
  }

  // The root fields, one per operation.
  const query: GraphQLFieldConfigMap<unknown, GraphQLContext> = {};
  const mutation: GraphQLFieldConfigMap<unknown, GraphQLContext> = {};
  const typeOfOutput = new Map<string, GraphQLOutputType>();
  /** Each operation's generated field, and whether its arguments are its input's fields one by one. */
  const built = new Map<string, Built>();
  for (const op of operations) {
    const opName = pascal(fieldNameOf(op.name));
    const inJson = jsonSchemaOf(op.input, "input");
    const inObject = inJson.type === "object" ? inJson : nonNull(inJson)?.type === "object" ? nonNull(inJson)! : undefined;
    const properties = Object.keys(inObject?.properties ?? {});
    // An input GraphQL cannot name field by field is one JSON argument (still checked by zod).
    const args: GraphQLFieldConfigArgumentMap =
      inObject && properties.every((k) => NAME.test(k) && k !== "idempotencyKey")
        ? argsOf(inObject, opName)
        : { input: { type: JsonScalar, description: "the operation's input, as REST takes it" } };
    const spread = "input" in args && args.input!.type === JsonScalar && !properties.includes("input");
    if (op.idempotent) args.idempotencyKey = { type: GraphQLString, description: "the Idempotency-Key of this change (or the Idempotency-Key header, for a request with one mutation)" };
    const out = outputType(jsonSchemaOf(op.output, "output"), `${opName}Result`, OUTPUT_NAMES.get(op.output));
    typeOfOutput.set(op.name, out.type);
    const field: GraphQLFieldConfig<unknown, GraphQLContext> = {
      type: out.type,
      description: op.summary,
      args,
      resolve: async (_source, given: Record<string, unknown>, ctx, info) => {
        const { idempotencyKey, ...rest } = given as Record<string, unknown> & { idempotencyKey?: string | null };
        const input = spread ? (rest.input ?? {}) : rest;
        const key = op.idempotent ? (idempotencyKey ?? headerKeyFor(ctx, info)) : undefined;
        return bodyOf(await execute(op, ctx.deps, ctx.limits, { caller: ctx.caller, key, input, origin: () => "args" }));
      },
    };
    (op.method === "GET" ? query : mutation)[fieldNameOf(op.name)] = field;
    built.set(op.name, { op, field, spread: "input" in args && args.input!.type === JsonScalar });
  }

  // Paged reads: a GET whose input has a page size and a cursor and whose answer is
  // `{items: [...], nextCursor}` also has a Relay connection form (the friendly and nested fields).
  const pageInfo = new GraphQLObjectType({
    name: uniqueName("PageInfo"),
    description: "Where a page stands. Pages go forward only: hasPreviousPage is always false.",
    fields: {
      hasNextPage: { type: new GraphQLNonNull(GraphQLBoolean), description: "whether a page follows (the list's nextCursor is not null)" },
      hasPreviousPage: { type: new GraphQLNonNull(GraphQLBoolean), description: "always false: pages go forward only" },
      startCursor: { type: GraphQLString, description: "the first edge's cursor (null unless that edge is also the last one of a page with a next)" },
      endCursor: { type: GraphQLString, description: "pass it as `after` for the next page; null on the last page" },
    },
  });
  const connections = new Map<GraphQLObjectType, GraphQLObjectType>();
  for (const b of built.values()) {
    if (b.op.method !== "GET" || b.spread || !(b.field.type instanceof GraphQLObjectType)) continue;
    const page = b.field.type;
    const items = own.get(page.name)?.items?.type;
    const list = items instanceof GraphQLNonNull ? items.ofType : items;
    if (!(list instanceof GraphQLList) || !own.get(page.name)?.nextCursor) continue;
    const names = Object.keys(b.field.args ?? {});
    const size = PAGE_SIZE_FIELDS.find((f) => names.includes(f));
    const cursor = CURSOR_FIELDS.find((f) => names.includes(f));
    if (!size || !cursor || names.some((n) => n === "first" || n === "after")) continue;
    let connection = connections.get(page);
    if (!connection) {
      const base = page.name.endsWith("Page") && page.name.length > 4 ? page.name.slice(0, -4) : page.name;
      const edge = new GraphQLObjectType({
        name: uniqueName(`${base}Edge`),
        fields: {
          node: { type: list.ofType as GraphQLOutputType },
          cursor: { type: GraphQLString, description: "the page's cursor on the last edge of a page (null on the last page); null on every other edge, since a list's cursor is per page, not per item" },
        },
      });
      connection = new GraphQLObjectType({
        name: uniqueName(`${base}Connection`),
        description: `${page.description ?? page.name} as a Relay connection: \`first\` is the page size, \`after\` the previous page's endCursor`,
        fields: { edges: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(edge))) }, pageInfo: { type: new GraphQLNonNull(pageInfo) } },
      });
      connections.set(page, connection);
    }
    b.paging = { size, cursor, connection };
  }

  // Nested reads, found generically: a field `<x>Id` (or `…<X>Id`) reads the object through the GET
  // operation `/…/:<x>Id`, and an object read that way lists its children (`/…/:<x>Id/<children>`).
  const getters = new Map<string, Operation>();
  for (const op of operations) {
    const params = pathParams(op.path);
    if (op.method === "GET" && params.length === 1 && op.path.endsWith(`/:${params[0]}`) && !getters.has(params[0]!)) getters.set(params[0]!, op);
  }
  for (const [param, getter] of getters) {
    const owner = typeOfOutput.get(getter.name);
    if (!(owner instanceof GraphQLObjectType)) continue;
    const children = extra.get(owner.name) ?? {};
    const ownFields = own.get(owner.name) ?? {};
    for (const op of operations) {
      const rest = op.path.slice(getter.path.length);
      if (op.method !== "GET" || !op.path.startsWith(`${getter.path}/`) || !/^\/[a-z-]+$/.test(rest) || pathParams(op.path).length !== 1) continue;
      const b = built.get(op.name)!;
      if (b.spread) continue;
      // The path's last segment names it; when the object already has a field of that name (a
      // chama's `members` is a count), the list is `<name>List` beside it.
      const segment = fieldNameOf(rest.slice(1));
      const field = segment in ownFields ? `${segment}List` : segment;
      if (field in ownFields || field in children) continue;
      children[field] = readField(b, { param, connection: true });
    }
    extra.set(owner.name, children);
  }
  // References: every object type with a `…Id` field naming a gettable object.
  for (const type of objects.values()) {
    const fields = own.get(type.name)!; // not type.getFields(): that would fix the fields before these are added
    const refs = extra.get(type.name) ?? {};
    for (const name of Object.keys(fields)) {
      for (const [param, getter] of getters) {
        if (!(name === param || name.endsWith(pascal(param)))) continue;
        const ref = name.slice(0, -2);
        if (!ref || ref in fields || ref in refs) continue;
        refs[ref] = {
          type: typeOfOutput.get(getter.name)!,
          description: `the object ${name} names, read as ${getter.name} would (not found when the caller may not see it)`,
          resolve: async (source: Record<string, unknown>, _args, ctx) => {
            if (typeof source[name] !== "string") return null;
            return bodyOf(await execute(getter, ctx.deps, ctx.limits, { caller: ctx.caller, key: undefined, input: { [param]: source[name] }, origin: () => "args" }));
          },
        };
      }
    }
    if (Object.keys(refs).length) extra.set(type.name, refs);
  }

  // Friendly queries: a paged read is its connection form; a read of one object by its one path
  // parameter (`/v1/wallets/:walletId`) takes it as `id`; anything else is the generated field.
  for (const [friendly, name] of Object.entries(FRIENDLY_QUERIES)) {
    const b = built.get(name);
    if (!b || b.op.method !== "GET" || friendly in query) continue;
    const params = pathParams(b.op.path);
    const single = params.length === 1 && b.op.path.endsWith(`/:${params[0]}`) && !("id" in (b.field.args ?? {})) ? params[0] : undefined;
    if (b.spread || (!b.paging && !single)) {
      query[friendly] = { ...b.field, description: `${b.field.description} (alias of ${fieldNameOf(name)})` };
      continue;
    }
    const how = b.paging ? "as a connection" : `with \`id\` for \`${single}\``;
    query[friendly] = { ...readField(b, { connection: true, ...(b.paging ? {} : { id: single }) }), description: `${b.field.description} (${fieldNameOf(name)} ${how})` };
  }
  for (const [friendly, name] of Object.entries(FRIENDLY_MUTATIONS)) {
    const field = mutation[fieldNameOf(name)];
    if (field && !(friendly in mutation)) mutation[friendly] = { ...field, description: `${field.description} (alias of ${fieldNameOf(name)})` };
  }

  /**
   * A read's field in its GraphQL form: `first`/`after` for a paged read's page size and cursor
   * (answered as a connection), `id` for the path parameter it reads by (`id`), or that parameter
   * taken from the object it is nested in (`param`). Everything still goes through `execute`, and a
   * refusal names the arguments the caller gave (`args.first`, not `args.limit`).
   */
  function readField(b: Built, how: { connection: boolean; id?: string | undefined; param?: string | undefined }): GraphQLFieldConfig<any, GraphQLContext> {
    const paging = how.connection ? b.paging : undefined;
    /** GraphQL argument → the operation's input field. */
    const renames: Record<string, string> = {};
    const args: GraphQLFieldConfigArgumentMap = {};
    for (const [name, arg] of Object.entries(b.field.args ?? {})) {
      if (name === how.param) continue;
      if (paging && name === paging.size) {
        args.first = { type: GraphQLInt, description: `how many items (the operation's \`${name}\`: 1 to ${PAGE_MAX}, ${PAGE_DEFAULT} when absent)` };
        renames.first = name;
      } else if (paging && name === paging.cursor) {
        args.after = { type: GraphQLString, description: "the endCursor of the previous page" };
        renames.after = name;
      } else if (name === how.id) {
        args.id = arg;
        renames.id = name;
      } else {
        args[name] = arg;
      }
    }
    return {
      type: paging ? paging.connection : b.field.type,
      description: b.op.summary,
      args,
      resolve: async (source: Record<string, unknown> | undefined, given: Record<string, unknown>, ctx) => {
        const input: Record<string, unknown> = {};
        for (const [name, value] of Object.entries(given)) {
          if (name in renames && value === null) continue; // `first: null`: as absent
          input[renames[name] ?? name] = value;
        }
        if (how.param) input[how.param] = source?.id;
        try {
          const body = bodyOf(await execute(b.op, ctx.deps, ctx.limits, { caller: ctx.caller, key: undefined, input, origin: () => "args" }));
          return paging ? connectionOf(body) : body;
        } catch (error) {
          throw renamed(error, renames);
        }
      },
    };
  }

  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: query }),
    ...(Object.keys(mutation).length ? { mutation: new GraphQLObjectType({ name: "Mutation", fields: mutation }) } : {}),
  });
}

/** The header's key, for a request with one mutation only: two changes never share a key. */
function headerKeyFor(ctx: GraphQLContext, info: GraphQLResolveInfo): string | undefined {
  if (!ctx.headerKey) return undefined;
  if (ctx.batched || info.operation.selectionSet.selections.length !== 1) {
    throw new CofferError("IDEMPOTENCY_KEY_REQUIRED", "with several mutations in one request, give each its own idempotencyKey argument");
  }
  return ctx.headerKey;
}

/** A success's body; a refusal replayed from the idempotency store is an error like any refusal. */
function bodyOf(reply: Reply): Record<string, unknown> {
  if (reply.status < 400) return reply.body;
  const body = reply.body as { code?: string; detail?: string };
  const code = (body.code && body.code in ERROR_STATUS ? body.code : "INTERNAL") as ErrorCode;
  const { type: _t, title: _ti, status: _s, code: _c, detail: _d, instance: _i, ...extra } = reply.body as Record<string, unknown>;
  throw new CofferError(code, typeof body.detail === "string" ? body.detail : "refused", extra);
}

/** An operation's generated field; `spread`: its input is one JSON argument; `paging`: it has a connection form. */
interface Built {
  op: Operation;
  field: GraphQLFieldConfig<unknown, GraphQLContext>;
  spread: boolean;
  paging?: { size: string; cursor: string; connection: GraphQLObjectType };
}

/** The input fields a paged read's page size and cursor may be called (`first` and `after` in a connection). */
export const PAGE_SIZE_FIELDS = ["limit", "pageSize"] as const;
export const CURSOR_FIELDS = ["cursor"] as const;

/**
 * A page `{items, nextCursor}` as a connection. REST's cursor is per page (where the next page
 * starts), not per item: the last edge carries it and every other edge's cursor is null.
 */
export function connectionOf(page: Record<string, unknown>) {
  const items = Array.isArray(page.items) ? page.items : [];
  const next = page.nextCursor === null || page.nextCursor === undefined ? null : String(page.nextCursor);
  const edges = items.map((node, i) => ({ node, cursor: i === items.length - 1 ? next : null }));
  return { edges, pageInfo: { hasNextPage: next !== null, hasPreviousPage: false, startCursor: edges[0]?.cursor ?? null, endCursor: next } };
}

/** A refusal naming the operation's input fields (`args.limit`) names the caller's arguments (`args.first`) instead. */
function renamed(error: unknown, renames: Record<string, string>): unknown {
  if (!(error instanceof CofferError) || !Object.keys(renames).length) return error;
  const swap = (text: string) => Object.entries(renames).reduce((t, [arg, field]) => t.replace(new RegExp(`\\bargs\\.${field}\\b`, "g"), `args.${arg}`), text);
  const errors = Array.isArray(error.extra.errors)
    ? error.extra.errors.map((e: unknown) => (e && typeof e === "object" && typeof (e as { path?: unknown }).path === "string" ? { ...e, path: swap((e as { path: string }).path) } : e))
    : undefined;
  return new CofferError(error.code, swap(error.detail), errors ? { ...error.extra, errors } : error.extra);
}
