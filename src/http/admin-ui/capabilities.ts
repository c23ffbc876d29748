import { openApi, type JsonSchema, type OpenApiOperation } from "./api";

/**
 * What this node offers, read from its /openapi.json (the operation table's own description), so the
 * page shows a button only where a route exists: the payout actions of the chain-payout pipeline
 * (retry, replace, cancel…) and a dead-letter queue appear when the node that serves the page has
 * them, with no change here. An action's form is made from its request body's schema.
 */
export interface Field {
  name: string;
  required: boolean;
  type: "string" | "number" | "integer" | "boolean";
  options?: string[];
  description?: string;
  maxLength?: number;
}

export interface RouteAction {
  verb: string;
  label: string;
  /** The route, as in /openapi.json (`/admin/withdrawals/{withdrawalId}/release`): every parameter is the object's id. */
  path: string;
  summary: string;
  fields: Field[];
  danger: boolean;
}

export interface PayoutAction extends RouteAction {
  /** Whether it applies to a payout of this kind (`withdrawal`, `chama_withdrawal`) in this status. */
  appliesTo(kind: string, status: string): boolean;
}

/** Statuses nothing can be done about any more: no retry, replace or cancel is offered there. */
const FINAL = new Set(["completed", "cancelled", "rejected", "returned", "confirmed_final"]);

/** The operator actions the page knows by name; any other `POST /admin/withdrawals/{id}/<verb>` is offered too. */
const KNOWN: Record<string, { label: string; danger: boolean; statuses?: string[] }> = {
  release: { label: "Release", danger: false, statuses: ["manual_review"] },
  reject: { label: "Reject", danger: true, statuses: ["manual_review"] },
  retry: { label: "Retry", danger: false },
  replace: { label: "Replace", danger: false },
  cancel: { label: "Cancel", danger: true, statuses: ["requested", "pending_approval", "approved", "checked", "parked"] },
};
/** Steps the payout processor (or the pipeline) reports; not an operator's buttons. */
const PROCESSOR_STEPS = new Set(["process", "complete", "fail", "hold", "return"]);

const PAYOUT_ROUTE = /^\/(admin|v1)\/(withdrawals|payouts)\/\{[A-Za-z0-9_]+\}\/([a-z][a-z0-9-]*)$/;
/**
 * The chain payout pipeline's operator actions (`POST /admin/payouts/{withdrawalId}/<verb>`: retry,
 * replace, cancel). They act on a wallet withdrawal Coffer pays on chain, which is `processing` from
 * the pipeline's claim until it completes (the node answers 409 where its chain payout is not in a
 * state the verb fits, 404 where it has none). Their verbs are `chain-<verb>`, so the chain's cancel
 * never takes the place of a withdrawal's own.
 */
const CHAIN_PAYOUT_ROUTE = /^\/admin\/payouts\/\{[A-Za-z0-9_]+\}\/([a-z][a-z0-9-]*)$/;
const DEAD_LETTER = /dead-?letter|\/dlq\b/i;
const REDRIVE = /\/(redrive|re-drive|replay|retry|requeue)$/;

export interface Capabilities {
  has(method: string, path: string): boolean;
  /** The POST route at `path` as an action with its form, or undefined where the node has no such route. */
  action(path: string, label?: string): RouteAction | undefined;
  /** The values a GET route's query parameter takes (its enum), or none. */
  choices(path: string, parameter: string): string[];
  payoutActions: PayoutAction[];
  deadLetters: { list: string[]; redrive: RouteAction[] };
  webhooks: boolean;
}

export async function loadCapabilities(): Promise<Capabilities> {
  const doc = await openApi();
  const routes = new Set<string>();
  for (const [path, methods] of Object.entries(doc.paths)) for (const method of Object.keys(methods)) routes.add(`${method.toUpperCase()} ${path}`);
  const op = (path: string) => doc.paths[path]?.post;

  // One action per verb; an /admin route wins over a /v1 one (the operator's, not the owner's).
  const byVerb = new Map<string, { path: string; scope: string }>();
  for (const path of Object.keys(doc.paths).sort()) {
    const m = PAYOUT_ROUTE.exec(path);
    if (!m || !op(path) || CHAIN_PAYOUT_ROUTE.test(path)) continue;
    const [, scope, , verb] = m as unknown as [string, string, string, string];
    if (PROCESSOR_STEPS.has(verb)) continue;
    // A /v1 route other than cancel is a processor's or an owner's step, not an operator's action.
    if (scope === "v1" && !KNOWN[verb]) continue;
    const seen = byVerb.get(verb);
    if (!seen || (seen.scope === "v1" && scope === "admin")) byVerb.set(verb, { path, scope });
  }
  const order = Object.keys(KNOWN);
  const payoutActions = [...byVerb.entries()]
    .sort(([a], [b]) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))
    .map(([verb, { path, scope }]): PayoutAction => {
      const known = KNOWN[verb];
      const statuses = known?.statuses ? new Set(known.statuses) : undefined;
      return {
        ...routeAction(verb, path, op(path)!, known?.label, known?.danger ?? false),
        // /v1/withdrawals/… are a wallet's withdrawals; a chama's have their own routes.
        appliesTo: (kind, status) => (scope === "admin" || kind === "withdrawal") && (statuses ? statuses.has(status) : !FINAL.has(status)),
      };
    });

  for (const path of Object.keys(doc.paths).sort()) {
    const verb = CHAIN_PAYOUT_ROUTE.exec(path)?.[1];
    if (!verb || !op(path)) continue;
    payoutActions.push({
      ...routeAction(`chain-${verb}`, path, op(path)!, `${verb.charAt(0).toUpperCase()}${verb.slice(1)} on chain`, verb === "cancel"),
      appliesTo: (kind, status) => kind === "withdrawal" && status === "processing",
    });
  }

  const deadList = [...routes].filter((r) => r.startsWith("GET ") && DEAD_LETTER.test(r) && !r.includes("{")).map((r) => r.slice(4));
  const redrive = [...routes]
    .filter((r) => r.startsWith("POST ") && DEAD_LETTER.test(r) && REDRIVE.test(r))
    .map((r) => r.slice(5))
    .map((path) => routeAction(path.split("/").pop()!, path, op(path)!, "Re-drive", false));

  return {
    has: (method, path) => routes.has(`${method.toUpperCase()} ${path}`),
    action: (path, label) => {
      const operation = op(path);
      return operation ? routeAction(path.split("/").pop()!, path, operation, label, false) : undefined;
    },
    choices: (path, parameter) => {
      const schema = doc.paths[path]?.get?.parameters?.find((p) => p.name === parameter)?.schema;
      return (schema?.enum ?? []).map(String);
    },
    payoutActions,
    deadLetters: { list: deadList, redrive },
    webhooks: routes.has("GET /v1/webhook-endpoints") && routes.has("GET /v1/webhook-endpoints/{endpointId}/deliveries"),
  };
}

function routeAction(verb: string, path: string, operation: OpenApiOperation, label: string | undefined, danger: boolean): RouteAction {
  return { verb, label: label ?? verb.charAt(0).toUpperCase() + verb.slice(1).replace(/-/g, " "), path, summary: operation.summary ?? "", fields: fieldsOf(operation), danger };
}

/** The body's fields, from the operation's JSON schema (the path's parameters are not among them). */
export function fieldsOf(operation: OpenApiOperation | undefined): Field[] {
  const schema: JsonSchema | undefined = operation?.requestBody?.content?.["application/json"]?.schema;
  if (!schema?.properties) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, s]) => {
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
    return {
      name,
      required: required.has(name),
      type: type === "number" || type === "integer" || type === "boolean" ? type : "string",
      ...(s.enum ? { options: s.enum.map(String) } : {}),
      ...(s.description ? { description: s.description } : {}),
      ...(s.maxLength ? { maxLength: s.maxLength } : {}),
    };
  });
}
