import type { Operation } from "../../src/api/operation";
import { OPERATIONS } from "../../src/api/operations";
import { isPublicPath, WEBHOOK_PATHS } from "../../src/http/auth";
import type { ErrorCode } from "../../lib/errors";
import { authorize, type Action } from "../../lib/policy";
import { PERMISSIONS, type Permission, type Principal } from "../../lib/principal";

/**
 * Who may call which operation, derived from the two tables that decide it: the operation table
 * (src/api/operations/: method, path, action, ownedBy) and the policy (lib/policy.ts, read through
 * `authorize` itself). ownership.test.ts tries every wallet-side operation with every kind of
 * caller from this; chama-access.test.ts does the same for chamas (./chama-routes.ts).
 */

/** What the policy says about an action, asked of `authorize` itself with made-up principals. */
export interface Rule {
  /** A user may do it to what they own (or, for chamas, to a chama they are part of). */
  owner: boolean;
  /** The permission that lets a service do it; null where no service may. */
  permission: Permission | null;
  /** Auditors may do it. */
  read: boolean;
}

const principal = (role: Principal["role"], permissions: Permission[] = []): Principal => ({ sub: "policy-probe", role, permissions: new Set(permissions) });

function allowed(p: Principal, action: Action): boolean {
  try {
    authorize(p, action);
    return true;
  } catch {
    return false;
  }
}

export function ruleOf(action: Action): Rule {
  const permissions = PERMISSIONS.filter((perm) => allowed(principal("service", [perm]), action));
  if (permissions.length > 1) throw new Error(`${action}: more than one permission allows it (${permissions.join(", ")}); the suites expect one`);
  return { owner: allowed(principal("user"), action), permission: permissions[0] ?? null, read: allowed(principal("auditor"), action) };
}

/** The not-found code of each kind of owned object: what a user gets for one that is not theirs. */
export const HIDDEN_AS: Record<NonNullable<Operation["ownedBy"]>, ErrorCode> = {
  wallet: "WALLET_NOT_FOUND",
  withdrawal: "WITHDRAWAL_NOT_FOUND",
  transfer: "TRANSFER_NOT_FOUND",
  chama: "CHAMA_NOT_FOUND",
  deposit: "DEPOSIT_NOT_FOUND",
};

/** Chama operations (their action is a chama one): chama-access.test.ts covers them, with the chama machine's rules. */
export const isChamaOperation = (op: Operation) => op.action.startsWith("chama.");

export interface RouteCase {
  op: Operation;
  /** The status of a successful call (an admin's, say) on a fresh fixture. */
  ok: 200 | 201;
  /**
   * What user B gets for user A's object: the owned object's not-found code, exactly as for one
   * that does not exist; FORBIDDEN where there is no object to hide (the input names user A, or
   * users may not do it at all).
   */
  stranger: ErrorCode;
  /** User A may do this to their own object. */
  owner: boolean;
  /** The permission a service needs; null where no service may. */
  permission: Permission | null;
  /** Auditors may do it (reads only). */
  read: boolean;
}

/** Every operation of the table that is not a chama's, with who may call it. */
export const ROUTES: RouteCase[] = OPERATIONS.filter((op) => !isChamaOperation(op)).map((op) => {
  const rule = ruleOf(op.action);
  return { op, ok: op.status, stranger: op.ownedBy ? HIDDEN_AS[op.ownedBy] : "FORBIDDEN", owner: rule.owner, permission: rule.permission, read: rule.read };
});

export function nameOf(route: { op: Operation }): string {
  return `${route.op.method} ${route.op.path}`;
}

/**
 * What the app serves besides the table, to anyone (src/http/auth.ts `isPublicPath` lets exactly
 * these through without a credential): /health (tested in health.test.ts and tokens.test.ts), /ready
 * (test/monitoring/admin-api.test.ts) and
 * the API reference, /openapi.json and /docs with the files its page loads (src/http/docs.ts); the
 * operators' dashboard page /admin/ui with its files (src/http/admin-ui.ts; test/http/admin-ui.test.ts); and
 * POST /v1/webhooks/stripe, where Stripe's signature is checked instead (test/stripe/webhooks.test.ts).
 */
export const PUBLIC_ROUTES = ["GET /health", "GET /ready", "GET /openapi.json", "GET /docs", "GET /admin/ui", "POST /v1/webhooks/stripe"];

/** Public: the GETs above, and the webhooks payment providers call (their signature stands in for a credential). */
export function isPublicRoute(method: string, path: string): boolean {
  return (method === "GET" && isPublicPath(path)) || (method === "POST" && WEBHOOK_PATHS.has(path));
}
