import type { ErrorCode } from "../../lib/errors";
import type { Permission } from "../../lib/principal";

/**
 * Every chama route of src/http/chamas.ts, and what each kind of caller gets from it. This table is
 * the specification chama-access.test.ts is generated from; ownership.test.ts checks that it and
 * ./routes.ts together list exactly the routes the app serves.
 *
 * A route acts on a fresh chama (see ChamaFixture) whose admins are CHAMA_ADMIN and SECOND_ADMIN,
 * whose plain members are MEMBER and OTHER_MEMBER, with INVITEE invited and FORMER removed. STRANGER
 * was never part of it. When funded, MEMBER has deposited 100.00 and has three 1.00 withdrawals:
 * one pending approval, one approved, one approved and continued (processing).
 */
export const CHAMA_ADMIN = "user-a";
export const SECOND_ADMIN = "user-a2";
export const MEMBER = "user-m";
export const OTHER_MEMBER = "user-x";
export const INVITEE = "user-i";
export const FORMER = "user-f";
export const STRANGER = "user-s";
/** Nobody in any fixture: invitations and direct adds name them. */
export const NEWCOMER = "user-new";

export interface ChamaFixture {
  chama: string;
  /** MEMBER's withdrawal waiting for approval (funded and frozen fixtures). */
  pending?: string;
  /** MEMBER's approved withdrawal, not yet continued. */
  approved?: string;
  /** MEMBER's approved withdrawal, continued: processing. */
  processing?: string;
}

/** funded: active with money and withdrawals; frozen: the same, frozen; empty: no money, no withdrawals; none: no chama needed. */
export type ChamaState = "funded" | "frozen" | "empty" | "none";

/** The callers every route is tried with. */
export const WHO = ["chamaAdmin", "member", "invitee", "former", "stranger", "platformAdmin", "auditor", "service", "serviceWithout"] as const;
export type Who = (typeof WHO)[number];

/**
 * A refusal, and who makes it: the edge (policy / operations, before any actor: nothing at all is
 * written) or the chama machine (in the actor: only the idempotent record of the refusal is written).
 */
export interface Refusal {
  code: ErrorCode;
  by: "edge" | "machine";
}
export type Expected = 200 | 201 | Refusal;

export const edge = (code: ErrorCode): Refusal => ({ code, by: "edge" });
export const machine = (code: ErrorCode): Refusal => ({ code, by: "machine" });

export interface ChamaRouteCase {
  method: "GET" | "POST";
  /** Exactly as registered with Hono. */
  pattern: string;
  state: ChamaState;
  /** Which of the fixture's withdrawals `:withdrawalId` names. */
  withdrawal?: "pending" | "approved" | "processing";
  /** Who `:memberId` names. */
  memberId?: string;
  query?: string;
  body?: (f: ChamaFixture) => unknown;
  /** The permission a service needs to get past the policy. */
  permission: Permission;
  expect: Record<Who, Expected>;
}

const FORBIDDEN = edge("FORBIDDEN");
const HIDDEN = edge("CHAMA_NOT_FOUND");

/**
 * Reads: anyone who is or was a member of the chama, platform admins, auditors, services with
 * chamas:read. An invitation is not membership: the invitee sees what a stranger sees.
 */
const readable: Record<Who, Expected> = {
  chamaAdmin: 200,
  member: 200,
  invitee: HIDDEN,
  former: 200,
  stranger: HIDDEN,
  platformAdmin: 200,
  auditor: 200,
  service: 200,
  serviceWithout: FORBIDDEN,
};

/**
 * Chama-admin actions: the policy lets anyone involved (and admins, and services with chamas:write)
 * through; the machine then refuses whoever is not a member (NOT_A_MEMBER) or not an admin (FORBIDDEN).
 */
const adminsOnly = (ok: 200 | 201): Record<Who, Expected> => ({
  chamaAdmin: ok,
  member: machine("FORBIDDEN"),
  invitee: machine("NOT_A_MEMBER"),
  former: machine("NOT_A_MEMBER"),
  stranger: HIDDEN,
  platformAdmin: machine("NOT_A_MEMBER"),
  auditor: FORBIDDEN,
  service: machine("NOT_A_MEMBER"),
  serviceWithout: FORBIDDEN,
});

/** Any member; MEMBER requested the fixture's withdrawals, so "the requester or an admin" lets them in too. */
const membersOnly = (ok: 200 | 201): Record<Who, Expected> => ({ ...adminsOnly(ok), member: ok });

/** Processor steps: platform admins and services with the permission; no user, not even a chama admin. */
const processorsOnly = (ok: 200 | 201): Record<Who, Expected> => ({
  chamaAdmin: FORBIDDEN,
  member: FORBIDDEN,
  invitee: FORBIDDEN,
  former: FORBIDDEN,
  stranger: HIDDEN,
  platformAdmin: ok,
  auditor: FORBIDDEN,
  service: ok,
  serviceWithout: FORBIDDEN,
});

const W = "/v1/chamas/:id/withdrawals/:withdrawalId";

export const CHAMA_ROUTES: ChamaRouteCase[] = [
  {
    method: "POST",
    pattern: "/v1/chamas",
    state: "none",
    // Naming CHAMA_ADMIN: platform admins and services may name anyone, a user only themselves.
    body: () => ({ name: "Umoja", asset: "USD", adminId: CHAMA_ADMIN }),
    permission: "chamas:write",
    expect: { ...processorsOnly(201), chamaAdmin: 201, stranger: FORBIDDEN },
  },
  { method: "GET", pattern: "/v1/chamas/:id", state: "funded", permission: "chamas:read", expect: readable },
  { method: "POST", pattern: "/v1/chamas/:id/freeze", state: "funded", permission: "chamas:write", expect: adminsOnly(200) },
  { method: "POST", pattern: "/v1/chamas/:id/unfreeze", state: "frozen", permission: "chamas:write", expect: adminsOnly(200) },
  { method: "POST", pattern: "/v1/chamas/:id/close", state: "empty", body: () => ({}), permission: "chamas:write", expect: adminsOnly(200) },
  { method: "POST", pattern: "/v1/chamas/:id/invitations", state: "funded", body: () => ({ memberId: NEWCOMER }), permission: "chamas:write", expect: adminsOnly(201) },
  {
    method: "POST",
    pattern: "/v1/chamas/:id/invitations/accept",
    state: "funded",
    body: () => ({}),
    permission: "chamas:write",
    // Everyone acts as themself, and only INVITEE has an invitation.
    expect: {
      chamaAdmin: machine("NOT_INVITED"),
      member: machine("NOT_INVITED"),
      invitee: 200,
      former: machine("NOT_INVITED"),
      stranger: HIDDEN,
      platformAdmin: machine("NOT_INVITED"),
      auditor: FORBIDDEN,
      service: machine("NOT_INVITED"),
      serviceWithout: FORBIDDEN,
    },
  },
  { method: "POST", pattern: "/v1/chamas/:id/members", state: "funded", body: () => ({ memberId: NEWCOMER, role: "member" }), permission: "chamas:write", expect: adminsOnly(201) },
  { method: "GET", pattern: "/v1/chamas/:id/members", state: "funded", permission: "chamas:read", expect: readable },
  { method: "GET", pattern: "/v1/chamas/:id/members/:memberId", memberId: MEMBER, state: "funded", permission: "chamas:read", expect: readable },
  {
    method: "POST",
    pattern: "/v1/chamas/:id/members/:memberId/remove",
    memberId: OTHER_MEMBER,
    state: "funded",
    body: () => ({ reason: "moved away" }),
    permission: "chamas:write",
    expect: adminsOnly(200),
  },
  {
    method: "POST",
    pattern: "/v1/chamas/:id/members/:memberId/role",
    memberId: OTHER_MEMBER,
    state: "funded",
    body: () => ({ role: "admin" }),
    permission: "chamas:write",
    expect: adminsOnly(200),
  },
  { method: "POST", pattern: "/v1/chamas/:id/rules", state: "funded", body: () => ({ maxPerDay: "100.00" }), permission: "chamas:write", expect: adminsOnly(200) },
  {
    method: "POST",
    pattern: "/v1/chamas/:id/deposits",
    state: "funded",
    body: () => ({ memberId: MEMBER, amount: "1.00", reference: "mpesa-1" }),
    permission: "credits:write",
    expect: processorsOnly(201),
  },
  {
    method: "POST",
    pattern: "/v1/chamas/:id/withdrawals",
    state: "funded",
    body: () => ({ amount: "1.00", destination: { type: "bank", account: "12345678" } }),
    permission: "chamas:write",
    // CHAMA_ADMIN may ask too: SECOND_ADMIN can approve it.
    expect: membersOnly(201),
  },
  { method: "GET", pattern: "/v1/chamas/:id/withdrawals", query: "?limit=10", state: "funded", permission: "chamas:read", expect: readable },
  { method: "GET", pattern: W, withdrawal: "pending", state: "funded", permission: "chamas:read", expect: readable },
  // A plain member may not review, even someone else's request (adminsOnly comes first).
  { method: "POST", pattern: `${W}/approve`, withdrawal: "pending", state: "funded", body: () => ({ note: "ok" }), permission: "chamas:write", expect: adminsOnly(200) },
  { method: "POST", pattern: `${W}/reject`, withdrawal: "pending", state: "funded", body: () => ({ note: "no" }), permission: "chamas:write", expect: adminsOnly(200) },
  { method: "POST", pattern: `${W}/park`, withdrawal: "pending", state: "funded", body: () => ({ note: "odd destination" }), permission: "chamas:write", expect: adminsOnly(200) },
  { method: "POST", pattern: `${W}/continue`, withdrawal: "approved", state: "funded", body: () => ({}), permission: "chamas:write", expect: membersOnly(200) },
  { method: "POST", pattern: `${W}/cancel`, withdrawal: "pending", state: "funded", body: () => ({ reason: "changed my mind" }), permission: "chamas:write", expect: membersOnly(200) },
  { method: "POST", pattern: `${W}/complete`, withdrawal: "processing", state: "funded", body: () => ({}), permission: "withdrawals:process", expect: processorsOnly(200) },
  { method: "POST", pattern: `${W}/fail`, withdrawal: "processing", state: "funded", body: () => ({ reason: "bank refused" }), permission: "withdrawals:process", expect: processorsOnly(200) },
  {
    method: "GET",
    pattern: "/v1/chamas/:id/audit",
    query: "?limit=10",
    state: "funded",
    permission: "chamas:read",
    // Only the chama's admins read its log. Other members, current or former, may read the chama,
    // so are told FORBIDDEN (src/api/chama-queries.ts); a stranger or an invitee sees it as missing.
    expect: { ...readable, member: FORBIDDEN, former: FORBIDDEN },
  },
];

export function chamaRouteName(route: ChamaRouteCase): string {
  return `${route.method} ${route.pattern}`;
}

/** The concrete path for a fixture. */
export function chamaPathOf(route: ChamaRouteCase, f: ChamaFixture): string {
  let path = route.pattern.replace(":id", f.chama);
  if (route.memberId) path = path.replace(":memberId", route.memberId);
  if (route.withdrawal) {
    const id = f[route.withdrawal];
    if (!id) throw new Error(`${chamaRouteName(route)} needs a ${route.withdrawal} withdrawal, which a ${route.state} fixture does not have`);
    path = path.replace(":withdrawalId", id);
  }
  return path + (route.query ?? "");
}
