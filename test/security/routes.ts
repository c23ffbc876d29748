import type { ErrorCode } from "../../lib/errors";
import type { Permission } from "../../lib/principal";

/**
 * Every route of src/http/*.ts, and who may call it. This table is the specification the
 * security suites are generated from; ownership.test.ts checks it lists exactly the routes the
 * app serves, so a new route cannot slip in untested.
 *
 * A route acts on user A's objects, arranged fresh in `state` (see Fixture): a funded wallet with a
 * requested withdrawal and a settled transfer out of it, that same wallet frozen, or an empty one;
 * API-key routes act on a fresh API key.
 */
export interface Fixture {
  /** User A's wallet the route acts on. */
  wallet?: string;
  /** A requested withdrawal from `wallet` (absent for an empty wallet). */
  withdrawal?: string;
  /** A settled transfer from `wallet` to `peer` (absent for an empty wallet). */
  transfer?: string;
  /** A wallet of a third user (neither A nor B): the receiver of the fixture's transfers. */
  peer: string;
  /** An API key (for the api-key routes). */
  apiKey?: string;
}

export type State = "funded" | "frozen" | "empty" | "apiKey";

export interface RouteCase {
  method: "GET" | "POST";
  /** Exactly as registered with Hono. */
  pattern: string;
  /** What `:id` in the pattern names. */
  id?: "wallet" | "withdrawal" | "transfer" | "apiKey";
  query?: string;
  state: State;
  body?: (f: Fixture) => unknown;
  /** The status of a successful call (an admin's, say) on a fresh fixture. */
  ok: 200 | 201;
  /** What user B gets for user A's object: its not-found code, or FORBIDDEN where nothing is hidden. */
  stranger: ErrorCode;
  /** User A may do this to their own object. */
  owner: boolean;
  /** The permission a service needs; null where no service may. */
  permission: Permission | null;
}

export const OWNER_A = "user-a";
export const OWNER_B = "user-b";
export const OWNER_C = "user-c";

const money = () => ({ amount: "1.00" });

export const ROUTES: RouteCase[] = [
  { method: "POST", pattern: "/v1/wallets", state: "funded", body: () => ({ ownerId: OWNER_A, asset: "USD" }), ok: 201, stranger: "FORBIDDEN", owner: true, permission: "wallets:write" },
  { method: "GET", pattern: "/v1/wallets/:id", id: "wallet", state: "funded", ok: 200, stranger: "WALLET_NOT_FOUND", owner: true, permission: "wallets:read" },
  { method: "POST", pattern: "/v1/wallets/:id/credits", id: "wallet", state: "funded", body: money, ok: 201, stranger: "WALLET_NOT_FOUND", owner: false, permission: "credits:write" },
  { method: "POST", pattern: "/v1/wallets/:id/payments", id: "wallet", state: "funded", body: money, ok: 201, stranger: "WALLET_NOT_FOUND", owner: true, permission: "payments:write" },
  { method: "POST", pattern: "/v1/wallets/:id/freeze", id: "wallet", state: "funded", ok: 200, stranger: "WALLET_NOT_FOUND", owner: false, permission: "wallets:admin" },
  { method: "POST", pattern: "/v1/wallets/:id/unfreeze", id: "wallet", state: "frozen", ok: 200, stranger: "WALLET_NOT_FOUND", owner: false, permission: "wallets:admin" },
  { method: "POST", pattern: "/v1/wallets/:id/close", id: "wallet", state: "empty", ok: 200, stranger: "WALLET_NOT_FOUND", owner: true, permission: "wallets:admin" },
  { method: "GET", pattern: "/v1/wallets/:id/transactions", id: "wallet", query: "?limit=10", state: "funded", ok: 200, stranger: "WALLET_NOT_FOUND", owner: true, permission: "wallets:read" },
  {
    method: "POST",
    pattern: "/v1/wallets/:id/withdrawals",
    id: "wallet",
    state: "funded",
    body: () => ({ amount: "1.00", destination: { type: "bank", account: "12345678" } }),
    ok: 201,
    stranger: "WALLET_NOT_FOUND",
    owner: true,
    permission: "withdrawals:write",
  },
  { method: "GET", pattern: "/v1/withdrawals/:id", id: "withdrawal", state: "funded", ok: 200, stranger: "WITHDRAWAL_NOT_FOUND", owner: true, permission: "withdrawals:read" },
  { method: "POST", pattern: "/v1/withdrawals/:id/process", id: "withdrawal", state: "funded", ok: 200, stranger: "WITHDRAWAL_NOT_FOUND", owner: false, permission: "withdrawals:process" },
  { method: "POST", pattern: "/v1/withdrawals/:id/complete", id: "withdrawal", state: "funded", ok: 200, stranger: "WITHDRAWAL_NOT_FOUND", owner: false, permission: "withdrawals:process" },
  { method: "POST", pattern: "/v1/withdrawals/:id/fail", id: "withdrawal", state: "funded", body: () => ({ reason: "bank refused" }), ok: 200, stranger: "WITHDRAWAL_NOT_FOUND", owner: false, permission: "withdrawals:process" },
  { method: "POST", pattern: "/v1/withdrawals/:id/cancel", id: "withdrawal", state: "funded", ok: 200, stranger: "WITHDRAWAL_NOT_FOUND", owner: true, permission: "withdrawals:process" },
  {
    method: "POST",
    pattern: "/v1/transfers",
    state: "funded",
    body: (f) => ({ fromWalletId: f.wallet, toWalletId: f.peer, amount: "1.00" }),
    ok: 201,
    stranger: "WALLET_NOT_FOUND",
    owner: true,
    permission: "transfers:write",
  },
  { method: "GET", pattern: "/v1/transfers/:id", id: "transfer", state: "funded", ok: 200, stranger: "TRANSFER_NOT_FOUND", owner: true, permission: "transfers:read" },
  { method: "GET", pattern: "/admin/verify", state: "funded", ok: 200, stranger: "FORBIDDEN", owner: false, permission: null },
  { method: "GET", pattern: "/admin/cluster", state: "funded", ok: 200, stranger: "FORBIDDEN", owner: false, permission: null },
  { method: "GET", pattern: "/admin/wallets/:id/state", id: "wallet", state: "funded", ok: 200, stranger: "FORBIDDEN", owner: false, permission: null },
  {
    method: "POST",
    pattern: "/v1/api-keys",
    state: "apiKey",
    body: () => ({ name: "payments service", subject: "svc-payments", permissions: ["payments:write"] }),
    ok: 201,
    stranger: "FORBIDDEN",
    owner: false,
    permission: null,
  },
  { method: "GET", pattern: "/v1/api-keys", state: "apiKey", ok: 200, stranger: "FORBIDDEN", owner: false, permission: null },
  { method: "GET", pattern: "/v1/api-keys/:id", id: "apiKey", state: "apiKey", ok: 200, stranger: "FORBIDDEN", owner: false, permission: null },
  { method: "POST", pattern: "/v1/api-keys/:id/revoke", id: "apiKey", state: "apiKey", ok: 200, stranger: "FORBIDDEN", owner: false, permission: null },
  { method: "POST", pattern: "/v1/api-keys/:id/rotate", id: "apiKey", state: "apiKey", ok: 201, stranger: "FORBIDDEN", owner: false, permission: null },
];

/** Routes anyone may call without a credential (tested in tokens.test.ts). */
export const PUBLIC_ROUTES = [{ method: "GET", pattern: "/health" }];

export function nameOf(route: RouteCase): string {
  return `${route.method} ${route.pattern}`;
}

/** The concrete path for a fixture. */
export function pathOf(route: RouteCase, f: Fixture): string {
  if (!route.id) return route.pattern + (route.query ?? "");
  const id = f[route.id];
  if (!id) throw new Error(`${nameOf(route)} needs a ${route.id}, which a ${route.state} fixture does not have`);
  return route.pattern.replace(":id", id) + (route.query ?? "");
}
