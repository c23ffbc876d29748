import { CofferError, type ErrorCode } from "./errors";
import type { Permission, Principal, Role } from "./principal";

/**
 * Who may do what, in one table. Admins may do everything; auditors may read everything and change
 * nothing; services may do what their permissions name; users may act only on their own wallets
 * (and what hangs off them) and on chamas they belong to, and only where the table lets owners act.
 *
 * A user asking about another user's wallet, withdrawal or transfer gets the same 404 as for one
 * that does not exist: nobody learns what others hold. A caller who may see a thing but not do
 * the thing gets 403.
 */
export type Action =
  | "wallet.create"
  | "wallet.read"
  | "wallet.credit"
  | "wallet.pay"
  | "wallet.freeze"
  | "wallet.close"
  | "withdrawal.request"
  | "withdrawal.read"
  | "withdrawal.process"
  | "withdrawal.cancel"
  | "transfer.create"
  | "transfer.read"
  | "chama.create"
  | "chama.read"
  | "chama.audit"
  | "chama.deposit"
  | "chama.contribute"
  | "chama.freeze"
  | "chama.unfreeze"
  | "chama.close"
  | "chama.invite"
  | "chama.accept"
  | "chama.member.add"
  | "chama.member.remove"
  | "chama.member.role"
  | "chama.rules.change"
  | "chama.withdrawal.request"
  | "chama.withdrawal.approve"
  | "chama.withdrawal.reject"
  | "chama.withdrawal.park"
  | "chama.withdrawal.continue"
  | "chama.withdrawal.cancel"
  | "chama.withdrawal.complete"
  | "chama.withdrawal.fail"
  | "deposit.create"
  | "deposit.read"
  | "deposit.refund"
  | "admin.read"
  | "withdrawal.review"
  | "alerts.review"
  | "monitoring.rules.change"
  | "apikeys.read"
  | "apikeys.manage"
  | "webhooks.read"
  | "webhooks.manage"
  | "chain.networks.manage"
  | "chain.payouts.manage";

interface Rule {
  /** The owner of the wallet concerned may do it. */
  owner: boolean;
  /** A service with this permission may do it. */
  permission: Permission | null;
  /** Auditors may do it (reads only). */
  read: boolean;
}

/** What a member does in their chama (the machine then decides whether this member may). */
const CHAMA_MEMBER_ACT: Rule = { owner: true, permission: "chamas:write", read: false };
/** What the payout processor reports about a chama withdrawal. */
const CHAMA_PROCESS: Rule = { owner: false, permission: "withdrawals:process", read: false };

const RULES: Record<Action, Rule> = {
  "wallet.create": { owner: true, permission: "wallets:write", read: false },
  "wallet.read": { owner: true, permission: "wallets:read", read: true },
  "wallet.credit": { owner: false, permission: "credits:write", read: false },
  "wallet.pay": { owner: true, permission: "payments:write", read: false },
  "wallet.freeze": { owner: false, permission: "wallets:admin", read: false },
  "wallet.close": { owner: true, permission: "wallets:admin", read: false },
  "withdrawal.request": { owner: true, permission: "withdrawals:write", read: false },
  "withdrawal.read": { owner: true, permission: "withdrawals:read", read: true },
  "withdrawal.process": { owner: false, permission: "withdrawals:process", read: false },
  "withdrawal.cancel": { owner: true, permission: "withdrawals:process", read: false },
  "transfer.create": { owner: true, permission: "transfers:write", read: false },
  "transfer.read": { owner: true, permission: "transfers:read", read: true },
  // Chamas: "owner" means a person who is (or was) part of the chama, and for the audit log one of
  // its admins. Whether a member may do a given thing (approve, change rules…) is the chama
  // machine's call, made inside the actor; platform admins and services act as their own subject,
  // so they are not members and cannot consent for a group. One action per operation, so each can be
  // granted or audited on its own even where the rules are the same today.
  "chama.create": { owner: true, permission: "chamas:write", read: false },
  "chama.read": { owner: true, permission: "chamas:read", read: true },
  "chama.audit": { owner: true, permission: "chamas:read", read: true },
  "chama.deposit": { owner: false, permission: "credits:write", read: false },
  // A contribution is money leaving a wallet for a chama: the wallet's owner (a user, for a chama
  // they are part of) or whoever may move that wallet's money (transfers:write). It is credited to
  // the wallet's owner, and only while they are a member (the chama decides when it arrives).
  "chama.contribute": { owner: true, permission: "transfers:write", read: false },
  "chama.freeze": CHAMA_MEMBER_ACT,
  "chama.unfreeze": CHAMA_MEMBER_ACT,
  "chama.close": CHAMA_MEMBER_ACT,
  "chama.invite": CHAMA_MEMBER_ACT,
  "chama.accept": CHAMA_MEMBER_ACT,
  "chama.member.add": CHAMA_MEMBER_ACT,
  "chama.member.remove": CHAMA_MEMBER_ACT,
  "chama.member.role": CHAMA_MEMBER_ACT,
  "chama.rules.change": CHAMA_MEMBER_ACT,
  "chama.withdrawal.request": CHAMA_MEMBER_ACT,
  "chama.withdrawal.approve": CHAMA_MEMBER_ACT,
  "chama.withdrawal.reject": CHAMA_MEMBER_ACT,
  "chama.withdrawal.park": CHAMA_MEMBER_ACT,
  "chama.withdrawal.continue": CHAMA_MEMBER_ACT,
  "chama.withdrawal.cancel": CHAMA_MEMBER_ACT,
  // Reported by the payout processor, not decided by members.
  "chama.withdrawal.complete": CHAMA_PROCESS,
  "chama.withdrawal.fail": CHAMA_PROCESS,
  // Card deposits: the wallet's owner pays in (or a service paying in on their behalf); the owner or
  // a platform admin gives money back, never a service.
  "deposit.create": { owner: true, permission: "deposits:write", read: false },
  "deposit.read": { owner: true, permission: "deposits:read", read: true },
  "deposit.refund": { owner: true, permission: null, read: false },
  "admin.read": { owner: false, permission: null, read: true },
  // Transaction monitoring (src/monitoring/): platform admins decide. Auditors read alerts and rules
  // (admin.read) but review nothing; no service and no user may.
  "withdrawal.review": { owner: false, permission: null, read: false },
  "alerts.review": { owner: false, permission: null, read: false },
  "monitoring.rules.change": { owner: false, permission: null, read: false },
  "apikeys.read": { owner: false, permission: null, read: true },
  "apikeys.manage": { owner: false, permission: null, read: false },
  // Webhooks out (src/webhooks/endpoints.ts): admins, and services for the endpoints they registered
  // (a service sees only its own); auditors read every one; users have none. An endpoint receives
  // every event of the types it names, whoever's wallet: grant webhooks:write like a platform read.
  "webhooks.read": { owner: false, permission: "webhooks:read", read: true },
  "webhooks.manage": { owner: false, permission: "webhooks:write", read: false },
  // The chain payout pipeline (src/integrations/chain/operator.ts): platform admins pause and resume
  // networks, and retry, replace or cancel payouts and settle dead letters; auditors read them
  // (admin.read). No service and no user may: these move or stop money on chain.
  "chain.networks.manage": { owner: false, permission: null, read: false },
  "chain.payouts.manage": { owner: false, permission: null, read: false },
};

/**
 * Allow or throw. `owners` are the owner ids of the wallets the action concerns (any one will do);
 * `hidden` is the not-found code a user sees for something that is not theirs.
 */
export function authorize(p: Principal, action: Action, owners: readonly string[] = [], hidden: ErrorCode = "NOT_FOUND"): void {
  const rule = RULES[action];
  if (byRole[p.role](p, rule, owners, hidden)) return;
  throw new CofferError("FORBIDDEN", "this credential may not do that");
}

const byRole: Record<Role, (p: Principal, rule: Rule, owners: readonly string[], hidden: ErrorCode) => boolean> = {
  admin: () => true,
  auditor: (_p, rule) => rule.read,
  service: (p, rule) => rule.permission !== null && p.permissions.has(rule.permission),
  user: (p, rule, owners, hidden) => {
    if (owners.length && !owners.includes(p.sub)) throw new CofferError(hidden, notFoundDetail(hidden));
    return rule.owner;
  },
};

function notFoundDetail(code: ErrorCode): string {
  return code.replace("_NOT_FOUND", "").toLowerCase().replace("not_found", "resource") + " not found";
}
