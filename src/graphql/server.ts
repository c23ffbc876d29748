import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  getNamedType,
  isInterfaceType,
  isObjectType,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from "graphql";
import type { Hono } from "hono";
import { CofferError, ERROR_STATUS, type ErrorCode } from "../../lib/errors";
import { log, reason } from "../../lib/log";
import type { Limits } from "../api/execute";
import type { OperationDeps } from "../api/operation";
import type { Config } from "../config";
import { callerOf } from "../http/auth";
import { buildSchema, PAGE_DEFAULT, PAGE_MAX, type GraphQLContext } from "./schema";

/**
 * `POST /graphql` and `GET /graphql` (queries only): the schema generated from the operation table
 * (./schema.ts) behind GraphQL Yoga, with the limits a public GraphQL edge needs, all on by default
 * and set by GRAPHQL_* variables (src/config.ts): the document's size (checked before anything is
 * parsed), its tokens (counted while parsing, so a hostile document stops early), depth, aliases,
 * directives and cost (lists cost their `limit`, connections their `first`), operations per batch, and no introspection nor
 * field suggestions unless GRAPHQL_INTROSPECTION=on. The caller is the one the app's
 * authentication proved (src/http/auth.ts); the money tier and every other rule apply in `execute`.
 */
export type GraphQLSettings = Pick<
  Config,
  | "GRAPHQL_MAX_DEPTH"
  | "GRAPHQL_MAX_COST"
  | "GRAPHQL_MAX_BATCH"
  | "GRAPHQL_MAX_ALIASES"
  | "GRAPHQL_MAX_TOKENS"
  | "GRAPHQL_MAX_DIRECTIVES"
  | "GRAPHQL_MAX_BYTES"
  | "GRAPHQL_INTROSPECTION"
  | "NODE_ENV"
>;

/**
 * GraphQL Yoga, loaded without its type declarations: they pull in the DOM library
 * (@whatwg-node/fetch's `/// <reference lib="dom" />`), which would retype every Request and
 * Response of the project. These few lines are all of its API used here.
 */
interface Yoga {
  fetch(request: Request, context: GraphQLContext): Response | Promise<Response>;
}
const { createYoga } = require("graphql-yoga") as { createYoga(options: Record<string, unknown>): Yoga };

/** The routes this adds to the app (beside the operation table's). */
export const GRAPHQL_ROUTES = ["GET /graphql", "POST /graphql"] as const;

export function registerGraphql(app: Hono, deps: OperationDeps, limits: Limits, settings: GraphQLSettings): void {
  const yoga = graphqlServer(settings);
  app.on(["GET", "POST"], "/graphql", async (c) => {
    const caller = callerOf(c);
    let request = c.req.raw;
    let batched = false;
    if (c.req.method === "POST") {
      const text = await c.req.text();
      if (Buffer.byteLength(text) > settings.GRAPHQL_MAX_BYTES) throw tooLarge(settings);
      batched = text.trimStart().startsWith("[");
      const headers = new Headers(c.req.raw.headers);
      headers.delete("content-length"); // the body is given again as read
      request = new Request(c.req.url, { method: "POST", headers, body: text });
    } else if (Buffer.byteLength(c.req.url) > settings.GRAPHQL_MAX_BYTES) {
      throw tooLarge(settings);
    }
    const context: GraphQLContext = { caller, deps, limits, headerKey: c.req.header("idempotency-key"), batched };
    const res = await yoga.fetch(request, context);
    // A document refused before anything ran (malformed, too deep, too costly…) answers 400 whatever
    // the Accept header (Yoga says 200 to application/json callers); errors of a run keep 200.
    if (res.status !== 200 || batched || !(res.headers.get("content-type") ?? "").includes("json")) return res;
    const text = await res.text();
    const refused = text.startsWith('{"errors"') && !("data" in (JSON.parse(text) as object));
    return new Response(text, { status: refused ? 400 : 200, headers: res.headers });
  });
}

function tooLarge(settings: GraphQLSettings): CofferError {
  return new CofferError("PAYLOAD_TOO_LARGE", `GraphQL documents are limited to ${settings.GRAPHQL_MAX_BYTES} bytes`);
}

export function graphqlServer(settings: GraphQLSettings): Yoga {
  const introspection = (settings.GRAPHQL_INTROSPECTION ?? (settings.NODE_ENV === "development" ? "on" : "off")) === "on";
  return createYoga({
    schema: buildSchema(),
    graphqlEndpoint: "/graphql",
    graphiql: false,
    landingPage: false,
    logging: false,
    batching: { limit: settings.GRAPHQL_MAX_BATCH },
    maskedErrors: { maskError },
    plugins: [
      EnvelopArmorPlugin({
        maxDepth: { n: settings.GRAPHQL_MAX_DEPTH, flattenFragments: true, exposeLimits: true },
        maxAliases: { n: settings.GRAPHQL_MAX_ALIASES, exposeLimits: true },
        maxTokens: { n: settings.GRAPHQL_MAX_TOKENS, exposeLimits: true },
        maxDirectives: { n: settings.GRAPHQL_MAX_DIRECTIVES, exposeLimits: true },
        // Armor's cost counts each field once; ours (below) multiplies a list by its page size.
        costLimit: { enabled: false },
        blockFieldSuggestion: { enabled: !introspection },
      }),
      rules(introspection ? [costRule(settings.GRAPHQL_MAX_COST)] : [costRule(settings.GRAPHQL_MAX_COST), NoSchemaIntrospectionCustomRule], !introspection),
    ],
  });
}

/** Extra validation rules, and the stable code on every refusal of the document (parse or validation). */
/** An envelop plugin (the type of armor's, so that envelop need not be a dependency of ours). */
type Plugin = ReturnType<typeof EnvelopArmorPlugin>;

function rules(extra: ValidationRule[], hideSuggestions: boolean): Plugin {
  const refusedDocument = (error: Error) => refused(error, hideSuggestions);
  return {
    onParse() {
      return ({ result, replaceParseResult }) => {
        if (result instanceof Error) replaceParseResult(refusedDocument(result));
      };
    },
    onValidate({ addValidationRule }) {
      for (const rule of extra) addValidationRule(rule);
      return ({ result, setResult }) => {
        if (result.length) setResult(result.map(refusedDocument));
      };
    },
  };
}

function refused(error: Error, hideSuggestions: boolean): GraphQLError {
  const e = error instanceof GraphQLError ? error : undefined;
  // Armor hides suggestions of fields; an argument's or enum value's "Did you mean" goes here.
  const message = hideSuggestions ? error.message.replace(/ ?Did you mean [^?]*\?/g, "") : error.message;
  return new GraphQLError(message, {
    ...(e?.nodes ? { nodes: e.nodes } : {}),
    ...(e?.source ? { source: e.source } : {}),
    ...(e?.positions ? { positions: e.positions } : {}),
    extensions: { ...e?.extensions, code: "VALIDATION_FAILED", status: 400, http: { status: 400 } },
  });
}

/**
 * Refusals keep their stable code and their detail (REST's problem, as `extensions`); anything else
 * that went wrong is "something went wrong" (logged here), never a stack, SQL or an internal message.
 */
export function maskError(error: unknown): Error {
  const located = error instanceof GraphQLError ? error : undefined;
  const original = located?.originalError ?? error;
  const at = { ...(located?.nodes ? { nodes: located.nodes } : {}), ...(located?.path ? { path: located.path } : {}) };
  if (original instanceof CofferError) {
    // Past a rate-limit tier the whole answer is 429 with Retry-After, as REST's (Yoga reads `http`
    // and leaves it out of the body).
    const retryAfter = original.code === "RATE_LIMITED" && typeof original.extra.retryAfter === "number" ? original.extra.retryAfter : undefined;
    const http = original.code === "RATE_LIMITED" ? { http: { status: 429, ...(retryAfter ? { headers: { "retry-after": String(retryAfter) } } : {}) } } : {};
    return new GraphQLError(original.detail, { ...at, extensions: { ...original.extra, code: original.code, status: original.status, ...http } });
  }
  if (original instanceof GraphQLError) {
    // GraphQL's own refusals (a wrong argument, a Decimal sent as a number): the caller's mistake.
    const code = typeof original.extensions?.code === "string" && original.extensions.code in ERROR_STATUS ? (original.extensions.code as ErrorCode) : "VALIDATION_FAILED";
    return new GraphQLError(original.message, { ...at, extensions: { ...original.extensions, code, status: ERROR_STATUS[code] } });
  }
  if (located && !located.originalError) {
    return new GraphQLError(located.message, { ...at, extensions: { ...located.extensions, code: "VALIDATION_FAILED", status: 400 } });
  }
  log("error", "graphql: internal error", { error: reason(original), path: located?.path?.join(".") });
  return new GraphQLError("something went wrong", { ...at, extensions: { code: "INTERNAL", status: 500 } });
}

/**
 * The cost of an operation: each field costs 1, and a field with a page size (`limit`, or `first`
 * for a connection) costs its selection that many times (the default page when none is given, the
 * largest when it is a variable). A connection's whole selection is multiplied, `pageInfo` included:
 * an over-count, never an under-count. Fragments are costed once each, so a document cannot make
 * this walk explode.
 */
export function costRule(max: number): ValidationRule {
  return (context: ValidationContext) => {
    const schema = context.getSchema();
    const fragments = new Map<string, number>();
    const inProgress = new Set<string>();

    function fragmentCost(node: FragmentDefinitionNode): number {
      const name = node.name.value;
      const known = fragments.get(name);
      if (known !== undefined) return known;
      if (inProgress.has(name)) return 0; // a cycle: graphql's own rule refuses it
      inProgress.add(name);
      const type = schema.getType(node.typeCondition.name.value);
      const cost = type ? selectionCost(node.selectionSet, type) : 0;
      inProgress.delete(name);
      fragments.set(name, cost);
      return cost;
    }

    function selectionCost(set: SelectionSetNode, type: GraphQLNamedType): number {
      let total = 0;
      for (const s of set.selections) {
        if (s.kind === Kind.FIELD) {
          const def = isObjectType(type) || isInterfaceType(type) ? type.getFields()[s.name.value] : undefined;
          total += 1;
          if (s.selectionSet && def) total += selectionCost(s.selectionSet, getNamedType(def.type)) * pageOf(s, def);
        } else if (s.kind === Kind.INLINE_FRAGMENT) {
          const t = s.typeCondition ? schema.getType(s.typeCondition.name.value) : type;
          if (t) total += selectionCost(s.selectionSet, t);
        } else {
          const fragment = context.getFragment(s.name.value);
          if (fragment) total += fragmentCost(fragment);
        }
        if (total > max * 1000) return total; // far past the limit: no need to count on
      }
      return total;
    }

    return {
      OperationDefinition(node) {
        const root = node.operation === "query" ? schema.getQueryType() : node.operation === "mutation" ? schema.getMutationType() : schema.getSubscriptionType();
        if (!root) return;
        const cost = selectionCost(node.selectionSet, root);
        if (cost > max) context.reportError(new GraphQLError(`query cost ${cost} exceeds the maximum cost of ${max}`, { nodes: [node], extensions: { code: "VALIDATION_FAILED" } }));
      },
    };
  };
}

function pageOf(node: FieldNode, def: GraphQLField<unknown, unknown>): number {
  const arg = def.args.find((a) => a.name === "limit" || a.name === "first");
  if (!arg) return 1;
  const given = node.arguments?.find((a) => a.name.value === arg.name);
  if (!given) return PAGE_DEFAULT;
  const v = given.value;
  if (v.kind === Kind.INT || v.kind === Kind.STRING) {
    const n = Number.parseInt(v.value, 10);
    return Number.isFinite(n) && n > 0 ? Math.min(n, 1_000_000) : 1;
  }
  return PAGE_MAX; // a variable: the largest page it could be
}
