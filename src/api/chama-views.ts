import type { Reply } from "../../actors/envelope";
import { heldOf, own, personOf, type ChamaContext } from "../../machines/chama.context";
import type { ChamaCommand, ChamaEffect, ChamaRules } from "../../machines/chama.events";
import { ERROR_STATUS, problem, refusal } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";

/**
 * How chamas, their members and their withdrawals look to callers: amounts as decimal strings in
 * the asset's scale, destinations masked. Mutations render from the actor's context; reads render
 * the same shapes from the projections in Postgres (chama-queries.ts).
 */
const fmt = (minor: bigint | string, asset: string) => formatAmount(BigInt(minor), asset as Asset);

export function rulesView(rules: ChamaRules, asset: string) {
  return {
    approvalsRequired: rules.approvalsRequired,
    rejectionsToReject: rules.rejectionsToReject,
    maxPerWithdrawal: rules.maxPerWithdrawal === null ? null : fmt(rules.maxPerWithdrawal, asset),
    maxPerDay: rules.maxPerDay === null ? null : fmt(rules.maxPerDay, asset),
    maxWithdrawalsPerWindow: rules.maxWithdrawalsPerWindow,
    windowMs: rules.windowMs,
    requestLifetimeMs: rules.requestLifetimeMs,
  };
}

export function chamaView(c: { id: string; name: string; asset: string; status: string; createdBy: string; posted: bigint; held: bigint; rules: ChamaRules; members: number }) {
  return {
    id: c.id,
    name: c.name,
    asset: c.asset,
    status: c.status,
    createdBy: c.createdBy,
    balance: { posted: fmt(c.posted, c.asset), held: fmt(c.held, c.asset), available: fmt(c.posted - c.held, c.asset) },
    rules: rulesView(c.rules, c.asset),
    members: c.members,
  };
}

/** A member's part of what the current members contributed, to four decimal places ("0.2500"). */
export function shareOf(contributed: bigint, total: bigint): string {
  if (total <= 0n) return "0.0000";
  const basisPoints = (contributed * 10_000n) / total;
  return `${basisPoints / 10_000n}.${(basisPoints % 10_000n).toString().padStart(4, "0")}`;
}

export function memberView(m: { chamaId: string; memberId: string; role: string | null; status: string; contributed: bigint; withdrawn: bigint; asset: string; total: bigint }) {
  return {
    chamaId: m.chamaId,
    memberId: m.memberId,
    role: m.role,
    status: m.status,
    contributed: fmt(m.contributed, m.asset),
    withdrawn: fmt(m.withdrawn, m.asset),
    share: m.status === "member" ? shareOf(m.contributed, m.total) : "0.0000",
  };
}

export function chamaWithdrawalView(w: {
  id: string;
  chamaId: string;
  memberId: string;
  asset: string;
  amount: bigint | string;
  status: string;
  approvals: readonly string[];
  rejections: readonly string[];
  destination?: { masked?: Record<string, string> } | undefined;
  reason?: string | null | undefined;
  expiresAt?: string | undefined;
  createdAt?: string | undefined;
  updatedAt: string;
}) {
  return {
    id: w.id,
    chamaId: w.chamaId,
    memberId: w.memberId,
    asset: w.asset,
    amount: fmt(w.amount, w.asset),
    status: w.status,
    approvals: [...w.approvals],
    rejections: [...w.rejections],
    ...(w.destination?.masked ? { destination: w.destination.masked } : {}),
    ...(w.reason ? { reason: w.reason } : {}),
    ...(w.expiresAt ? { expiresAt: w.expiresAt } : {}),
    ...(w.createdAt ? { createdAt: w.createdAt } : {}),
    updatedAt: w.updatedAt,
  };
}

function contributedByMembers(context: ChamaContext): bigint {
  let total = 0n;
  for (const member of Object.values(context.members)) total += member.contributed;
  return total;
}

function personView(context: ChamaContext, memberId: string) {
  return memberView({ chamaId: context.chamaId, memberId, ...personOf(context, memberId), asset: context.asset, total: contributedByMembers(context) });
}

function chamaOf(context: ChamaContext, status: string) {
  return chamaView({
    id: context.chamaId,
    name: context.name,
    asset: context.asset,
    status,
    createdBy: context.createdBy,
    posted: context.posted,
    held: heldOf(context),
    rules: context.rules,
    members: Object.keys(context.members).length,
  });
}

const STATUS_AFTER = { "chama.opened": "active", "chama.frozen": "frozen", "chama.unfrozen": "active", "chama.closed": "closed" } as const;

/** The outcome a chama command's caller hears, built from what the machine emitted. */
export function renderChamaOutcome(command: ChamaCommand, effects: ChamaEffect[], context: ChamaContext, status: string): Reply {
  // Removing a member may first cancel their open requests; the caller asked about the member.
  const first = (command.type === "chama.member.remove" && effects.find((e) => e.type === "chama.member.removed" || e.type === "chama.member.invitation_revoked")) || effects[0]!;
  if (first.type === "rejected") {
    // A step on a withdrawal this chama never had (or forgot long ago) names nothing: 404.
    if (first.code === "INVALID_TRANSITION" && "withdrawalId" in command && command.type !== "chama.withdrawal.request") {
      const known = own(context.withdrawals, command.withdrawalId) || context.ended.some((e) => e.withdrawalId === command.withdrawalId);
      if (!known) return refusal("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
    }
    return { status: ERROR_STATUS[first.code], body: problem(first.code, first.detail) };
  }
  switch (first.type) {
    case "chama.opened":
      return { status: 201, body: chamaOf(context, STATUS_AFTER[first.type]) };
    case "chama.frozen":
    case "chama.unfrozen":
    case "chama.closed":
      return { status: 200, body: chamaOf(context, STATUS_AFTER[first.type]) };
    case "chama.rules.changed":
      return { status: 200, body: chamaOf(context, status) };
    case "chama.member.invited":
      return { status: 201, body: personView(context, first.memberId) };
    case "chama.member.joined":
      return { status: command.type === "chama.member.add" ? 201 : 200, body: personView(context, first.memberId) };
    case "chama.member.removed":
    case "chama.member.invitation_revoked":
    case "chama.member.role_changed":
      return { status: 200, body: personView(context, first.memberId) };
    case "chama.deposited":
      return {
        status: 201,
        body: {
          id: first.journal.id,
          chamaId: first.chamaId,
          memberId: first.memberId,
          asset: first.asset,
          amount: fmt(first.amount, first.asset),
          contributed: fmt(first.contributed, first.asset),
          ...(first.journal.reference ? { reference: first.journal.reference } : {}),
          balance: { available: fmt(context.posted - heldOf(context), first.asset) },
          createdAt: first.at,
        },
      };
    case "chama.withdrawal.reviewed":
    case "chama.withdrawal.changed": {
      // The last word on the withdrawal (a decisive review is followed by its status change).
      const last = effects.findLast((e) => e.type === "chama.withdrawal.changed" || e.type === "chama.withdrawal.reviewed") as typeof first;
      const open = own(context.withdrawals, last.withdrawalId);
      const changed = effects.find((e) => e.type === "chama.withdrawal.changed");
      return {
        status: command.type === "chama.withdrawal.request" ? 201 : 200,
        body: chamaWithdrawalView({
          id: last.withdrawalId,
          chamaId: last.chamaId,
          memberId: open?.memberId ?? (changed?.type === "chama.withdrawal.changed" ? changed.memberId : ""),
          asset: last.asset,
          amount: open?.amount ?? (changed?.type === "chama.withdrawal.changed" ? changed.amount : 0n),
          status: last.status,
          approvals: open?.approvals ?? last.approvals,
          rejections: open?.rejections ?? last.rejections,
          destination: open?.destination,
          reason: changed?.type === "chama.withdrawal.changed" ? changed.reason : undefined,
          // What never changes about it, while the chama still holds it open; for one that just
          // ended, ChamaService fills these in from its row (committed with this answer).
          expiresAt: open?.expiresAt,
          createdAt: open?.requestedAt ?? (command.type === "chama.withdrawal.request" ? last.at : undefined),
          updatedAt: last.at,
        }),
      };
    }
    default:
      return { status: 200, body: chamaOf(context, status) };
  }
}
