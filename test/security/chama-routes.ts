import type { Operation } from "../../src/api/operation";
import { OPERATIONS } from "../../src/api/operations";
import type { ErrorCode } from "../../lib/errors";
import type { Permission } from "../../lib/principal";
import { isChamaOperation, ruleOf } from "./routes";

/**
 * What each kind of caller gets from each chama operation, derived from the operation table and
 * the policy (./routes.ts `ruleOf`), with what the policy cannot know (the chama machine's rules,
 * and who may read the audit log) in a small table of overrides keyed by operation name.
 *
 * The callers (test/support/operations.ts names the people): a chama admin, a plain member who
 * requested the fixture's withdrawals, an invitee, a former member, a stranger who was never part
 * of it, a platform admin, an auditor, a service with the operation's permission and one with
 * every permission but that one.
 */
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

const FORBIDDEN = edge("FORBIDDEN");
const HIDDEN = edge("CHAMA_NOT_FOUND");

/** Admin-only steps: the machine refuses a plain member. */
const ADMINS_ONLY: Partial<Record<Who, Expected>> = { member: machine("FORBIDDEN") };

/**
 * What the policy does not decide, by operation name. Everything else follows from the policy:
 * - reads: anyone who is or was a member (an invitation is not membership: an invitee sees what a
 *   stranger sees), platform admins, auditors, services with the read permission;
 * - what members do in their chama: the policy lets anyone involved through (and platform admins,
 *   and services with the permission); the machine then refuses whoever is not a member
 *   (NOT_A_MEMBER: invitees, former members, and platform credentials, which act as their own
 *   subject and are never members), and lets members in, unless the operation is listed here;
 * - what only platform credentials may do (deposits, payout reports): FORBIDDEN to every user
 *   involved, hidden from a stranger.
 */
export const CHAMA_OVERRIDES: Record<string, Partial<Record<Who, Expected>>> = {
  // The fixture names CHAMA_ADMIN as the first admin: platform credentials may name anyone, a user only themselves.
  "chamas.create": { member: FORBIDDEN, invitee: FORBIDDEN, former: FORBIDDEN, stranger: FORBIDDEN },
  "chamas.freeze": ADMINS_ONLY,
  "chamas.unfreeze": ADMINS_ONLY,
  "chamas.close": ADMINS_ONLY,
  "chamas.invitations.create": ADMINS_ONLY,
  "chamas.members.add": ADMINS_ONLY,
  "chamas.members.remove": ADMINS_ONLY,
  "chamas.members.role": ADMINS_ONLY,
  "chamas.rules": ADMINS_ONLY,
  // A plain member may not review, even someone else's request.
  "chamas.withdrawals.approve": ADMINS_ONLY,
  "chamas.withdrawals.reject": ADMINS_ONLY,
  "chamas.withdrawals.park": ADMINS_ONLY,
  // Everyone acts as themself, and only INVITEE has an invitation.
  "chamas.invitations.accept": {
    chamaAdmin: machine("NOT_INVITED"),
    member: machine("NOT_INVITED"),
    invitee: 200,
    former: machine("NOT_INVITED"),
    platformAdmin: machine("NOT_INVITED"),
    service: machine("NOT_INVITED"),
  },
  // Only the chama's admins read its log. Other members, current or former, may read the chama,
  // so are told FORBIDDEN (src/api/chama-queries.ts); a stranger or an invitee sees it as missing.
  "chamas.audit": { member: FORBIDDEN, former: FORBIDDEN },
  // A list of the caller's own chamas: an invitee finds the chama they are invited to (and every
  // user gets their own list, a stranger an empty one).
  "chamas.list": { invitee: 200 },
  // The fixture's wallet is MEMBER's: any other user is told it does not exist (before anything is
  // written); platform credentials may move its money, credited to MEMBER.
  "chamas.contributions.create": {
    chamaAdmin: edge("WALLET_NOT_FOUND"),
    invitee: edge("WALLET_NOT_FOUND"),
    former: edge("WALLET_NOT_FOUND"),
    platformAdmin: 201,
    service: 201,
  },
};

export interface ChamaRouteCase {
  op: Operation;
  /** The permission a service needs to get past the policy (every chama action names one). */
  permission: Permission;
  expect: Record<Who, Expected>;
}

/** What `who` gets from `op` by the policy alone (before the overrides). */
function derived(op: Operation, who: Who): Expected {
  const rule = ruleOf(op.action);
  const ok = op.status;
  const read = op.method === "GET";
  const inChama = op.ownedBy === "chama";
  /** Something a member does inside the chama: the machine decides who may. */
  const memberAct = inChama && !read && rule.owner;
  switch (who) {
    case "chamaAdmin":
    case "member":
      return rule.owner ? ok : FORBIDDEN;
    case "invitee":
      if (!rule.owner) return FORBIDDEN;
      return read ? HIDDEN : memberAct ? machine("NOT_A_MEMBER") : ok;
    case "former":
      if (!rule.owner) return FORBIDDEN;
      return memberAct ? machine("NOT_A_MEMBER") : ok;
    case "stranger":
      return inChama ? HIDDEN : rule.owner ? ok : FORBIDDEN;
    case "platformAdmin":
    case "service":
      return memberAct ? machine("NOT_A_MEMBER") : ok;
    case "auditor":
      return rule.read ? ok : FORBIDDEN;
    case "serviceWithout":
      return FORBIDDEN;
  }
}

export const CHAMA_ROUTES: ChamaRouteCase[] = OPERATIONS.filter(isChamaOperation).map((op) => {
  const permission = ruleOf(op.action).permission;
  if (!permission) throw new Error(`${op.name}: no service permission allows ${op.action}; chama-access.test.ts expects one`);
  const overrides = CHAMA_OVERRIDES[op.name] ?? {};
  return { op, permission, expect: Object.fromEntries(WHO.map((who) => [who, overrides[who] ?? derived(op, who)])) as Record<Who, Expected> };
});

export function chamaRouteName(route: ChamaRouteCase): string {
  return `${route.op.method} ${route.op.path}`;
}
