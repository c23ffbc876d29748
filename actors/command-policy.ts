import type { ChamaContext } from "../machines/chama.context";
import type { ChamaCommand, ChamaCommandType } from "../machines/chama.events";
import type { WalletContext } from "../machines/wallet.machine";
import type { DepositContext } from "../machines/deposit.machine";
import type { DepositCommand, DepositCommandType } from "../machines/deposit.events";
import type { WalletCommand, WalletCommandType } from "../machines/wallet.events";
import { CofferError } from "../lib/errors";
import { authorize, type Action } from "../lib/policy";
import { memberIdOf, type Principal, type PrincipalClaim } from "../lib/principal";

/**
 * The actor's own check of who may send what, made against the actor's state whatever transport
 * the command came by. The edge checked the same before sending; this is the second lock, so a
 * forged or mis-built envelope (a raw `transfer.reserve` on someone else's wallet, an approval "as"
 * another admin) is refused where the money is.
 *
 * Each command names the policy action it needs (lib/policy.ts) and, for chamas, which of
 * its fields says who is acting: that field must be the principal's own chama identity. `system`
 * commands are Coffer's internal steps: only the system principal sends them, and it sends nothing else.
 */
type Rule<C> =
  | { system: true }
  | {
      /** The policy action, or how to read it off the command (a review approves or rejects). */
      action: Action | ((command: C) => Action);
      actingAs?: (command: C) => string | undefined;
      owned?: (command: C) => string | undefined;
    };

const actionOf = <C>(rule: { action: Action | ((command: C) => Action) }, command: C): Action =>
  typeof rule.action === "function" ? rule.action(command) : rule.action;

const WALLET_RULES: Record<WalletCommandType, Rule<WalletCommand>> = {
  "wallet.open": { action: "wallet.create", owned: (c) => (c as Extract<WalletCommand, { type: "wallet.open" }>).ownerId },
  "wallet.credit": { action: "wallet.credit" },
  "wallet.payment": { action: "wallet.pay" },
  "wallet.freeze": { action: "wallet.freeze" },
  "wallet.unfreeze": { action: "wallet.freeze" },
  "wallet.close": { action: "wallet.close" },
  "withdrawal.request": { action: "withdrawal.request" },
  "withdrawal.process": { action: "withdrawal.process" },
  "withdrawal.complete": { action: "withdrawal.process" },
  "withdrawal.fail": { action: "withdrawal.process" },
  "withdrawal.cancel": { action: "withdrawal.cancel" },
  // Bank payouts through Stripe: the payout worker's steps (src/workers/payout-worker.ts), never a caller's.
  "withdrawal.payout.send": { system: true },
  "withdrawal.payout.complete": { system: true },
  "withdrawal.payout.fail": { system: true },
  "withdrawal.payout.return": { system: true },
  // Transaction monitoring holds a withdrawal (src/monitoring/worker.ts); a platform admin releases or rejects it.
  "withdrawal.hold": { system: true },
  "withdrawal.release": { action: "withdrawal.review" },
  "withdrawal.reject": { action: "withdrawal.review" },
  "transfer.reserve": { action: "transfer.create" },
  "transfer.credit": { system: true },
  "transfer.settle": { system: true },
  "transfer.void": { system: true },
  // Card money: the deposit saga's steps, decided by the deposit's actor (machines/deposit.machine.ts).
  "deposit.credit": { system: true },
  "deposit.refund.debit": { system: true },
  "deposit.refund.return": { system: true },
  "deposit.dispute.debit": { system: true },
  "deposit.dispute.return": { system: true },
};

const DEPOSIT_RULES: Record<DepositCommandType, Rule<DepositCommand>> = {
  "deposit.open": { action: "deposit.create", owned: (c) => (c as Extract<DepositCommand, { type: "deposit.open" }>).ownerId },
  "deposit.refund.request": { action: "deposit.refund" },
  // What Stripe reports, and the deposit saga's own steps.
  "deposit.adopt": { system: true },
  "deposit.payment": { system: true },
  "deposit.refund.cancel": { system: true },
  "deposit.refund.report": { system: true },
  "deposit.dispute": { system: true },
};

const field = (name: string) => (c: ChamaCommand) => (c as unknown as Record<string, string | undefined>)[name];
const byMember = (action: Action) => ({ action, actingAs: field("by") }) as const;
const reviewAction = (c: ChamaCommand): Action =>
  (c as Extract<ChamaCommand, { type: "chama.withdrawal.review" }>).decision === "approve" ? "chama.withdrawal.approve" : "chama.withdrawal.reject";

const CHAMA_RULES: Record<ChamaCommandType, Rule<ChamaCommand>> = {
  "chama.open": { action: "chama.create", owned: field("createdBy") },
  "chama.freeze": byMember("chama.freeze"),
  "chama.unfreeze": byMember("chama.unfreeze"),
  "chama.close": byMember("chama.close"),
  "chama.member.invite": byMember("chama.invite"),
  "chama.member.accept": { action: "chama.accept", actingAs: field("memberId") },
  "chama.member.add": byMember("chama.member.add"),
  "chama.member.remove": byMember("chama.member.remove"),
  "chama.member.role": byMember("chama.member.role"),
  "chama.rules.change": byMember("chama.rules.change"),
  "chama.deposit": { action: "chama.deposit", actingAs: field("via") },
  "chama.withdrawal.request": { action: "chama.withdrawal.request", actingAs: field("memberId") },
  "chama.withdrawal.review": { action: reviewAction, actingAs: field("reviewerId") },
  "chama.withdrawal.park": byMember("chama.withdrawal.park"),
  "chama.withdrawal.continue": byMember("chama.withdrawal.continue"),
  "chama.withdrawal.complete": { action: "chama.withdrawal.complete", actingAs: field("via") },
  "chama.withdrawal.fail": { action: "chama.withdrawal.fail", actingAs: field("via") },
  "chama.withdrawal.cancel": byMember("chama.withdrawal.cancel"),
  "chama.withdrawal.expire": { system: true },
  // Transaction monitoring parks a request for the platform's review (SYSTEM_ACTOR); a platform admin,
  // acting as themselves (`admin#<sub>`, never a member), releases it to the chama's admins or rejects it.
  "chama.withdrawal.hold": { system: true },
  "chama.withdrawal.release": { action: "withdrawal.review", actingAs: field("by") },
  // The transfer saga's steps between chamas and wallets.
  "chama.transfer.credit": { system: true },
  "chama.withdrawal.settle": { system: true },
  "chama.withdrawal.void": { system: true },
};

/** Throws CofferError (403, or the not-found a user sees for what is not theirs) when `claim` may not send `command` here. */
export function checkWalletCommand(claim: PrincipalClaim, command: WalletCommand, context: WalletContext): void {
  const rule = WALLET_RULES[command.type];
  if (!rule) throw refusal();
  const principal = gate(claim, rule);
  if (!principal || "system" in rule) return;
  // An unopened wallet has no owner yet: only wallet.open reaches the machine's "not found" past this.
  const owners = rule.owned ? [rule.owned(command) ?? ""] : context.ownerId ? [context.ownerId] : [];
  authorize(principal, actionOf(rule, command), owners, "WALLET_NOT_FOUND");
}

export function checkDepositCommand(claim: PrincipalClaim, command: DepositCommand, context: DepositContext): void {
  const rule = DEPOSIT_RULES[command.type];
  if (!rule) throw refusal();
  const principal = gate(claim, rule);
  if (!principal || "system" in rule) return;
  const owners = rule.owned ? [rule.owned(command) ?? ""] : context.ownerId ? [context.ownerId] : [];
  authorize(principal, actionOf(rule, command), owners, "DEPOSIT_NOT_FOUND");
}

export function checkChamaCommand(claim: PrincipalClaim, command: ChamaCommand, _context: ChamaContext): void {
  const rule = CHAMA_RULES[command.type];
  if (!rule) throw refusal();
  const principal = gate(claim, rule);
  if (!principal || "system" in rule) return;
  // Whether this member may do it (admin? requester? member at all?) is the machine's decision;
  // here: the credential may do this kind of thing, and acts as itself, never as someone else.
  authorize(principal, actionOf(rule, command), rule.owned && principal.role === "user" ? [rule.owned(command) ?? ""] : [], "CHAMA_NOT_FOUND");
  const actingAs = rule.actingAs?.(command);
  if (rule.actingAs && actingAs !== memberIdOf(claim)) throw refusal();
}

/** Sorts out system steps; returns the principal to check further, or undefined when nothing more is needed. */
function gate<C>(claim: PrincipalClaim, rule: Rule<C>): Principal | undefined {
  const system = claim.role === "system";
  if ("system" in rule !== system) throw refusal();
  if (system) return undefined;
  return { sub: claim.sub, role: claim.role as Principal["role"], permissions: new Set(claim.permissions) };
}

function refusal(): CofferError {
  return new CofferError("FORBIDDEN", "this credential may not do that");
}
