import type { ChamaCommand, ChamaRole, ChamaRules } from "./chama.events";
import { SYSTEM_ACTOR } from "./chama.events";
import type { EndedChamaWithdrawalStatus, OpenChamaWithdrawalStatus } from "./chama.withdrawal";
import type { SealedDestination as Destination } from "./wallet.events";

/**
 * What a chama remembers, and the pure questions asked of it (available money, limits, who may
 * approve). The machine (chama.machine.ts) decides; these helpers only compute.
 */
export const DAY_MS = 86_400_000;

/** Every collection in a chama's context is bounded; past a bound the command is LIMIT_EXCEEDED. */
export const CHAMA_LIMITS = {
  membersMax: 500,
  invitationsMax: 100,
  /** Former members whose contributions are remembered; the oldest is forgotten first. */
  formerMax: 500,
  openWithdrawalsMax: 100,
  /** Withdrawals counted toward the daily and window limits (pruned by time at every request). */
  recentMax: 1_000,
  /** Ended withdrawals remembered, so late steps get a clear answer and ids are never reused. */
  endedMax: 100,
  windowMsMin: 60_000,
  windowMsMax: 31 * DAY_MS,
  requestLifetimeMsMin: 60_000,
  requestLifetimeMsMax: 90 * DAY_MS,
} as const;

export const DEFAULT_CHAMA_RULES: ChamaRules = {
  approvalsRequired: 1,
  rejectionsToReject: 1,
  maxPerWithdrawal: null,
  maxPerDay: null,
  maxWithdrawalsPerWindow: null,
  windowMs: DAY_MS,
  requestLifetimeMs: 7 * DAY_MS,
};

export interface ChamaMember {
  role: ChamaRole;
  joinedAt: string;
  /** Sum of the deposits attributed to this member. */
  contributed: bigint;
  /** Sum of this member's completed withdrawals. */
  withdrawn: bigint;
}

export interface ChamaInvitation {
  role: ChamaRole;
  invitedBy: string;
  invitedAt: string;
}

export interface FormerMember {
  contributed: bigint;
  withdrawn: bigint;
  leftAt: string;
}

export interface ChamaWithdrawal {
  memberId: string;
  amount: bigint;
  status: OpenChamaWithdrawalStatus;
  /** Admins whose approval counts now (reset when the request is parked for manual review). */
  approvals: string[];
  rejections: string[];
  requestedAt: string;
  /** Past this time the request can no longer be reviewed or continued; it waits to be expired. */
  expiresAt: string;
  destination: Destination;
  /**
   * Paid into this wallet of the requester's instead of out to a bank or an address: when it is
   * continued the money leaves for transit at once (it is no longer held), and the transfer saga
   * settles it once the wallet took it, or voids it (the money back) when the wallet refused.
   */
  toWalletId?: string;
  /**
   * Parked in manual review by transaction monitoring (chama.withdrawal.hold): the chama's admins
   * cannot review it until a platform admin releases it (or rejects it).
   */
  heldByPlatform?: true;
}

/** A withdrawal into a wallet whose money already left for transit: posted out, so no longer held. */
export function inTransit(w: ChamaWithdrawal): boolean {
  return w.status === "processing" && w.toWalletId !== undefined;
}

/** A withdrawal that counts toward the daily and window limits: requested recently and not released. */
export interface CountedWithdrawal {
  withdrawalId: string;
  amount: bigint;
  at: string;
}

export interface EndedWithdrawal {
  withdrawalId: string;
  status: EndedChamaWithdrawalStatus;
  at: string;
}

export interface ChamaContext {
  chamaId: string;
  name: string;
  asset: string;
  createdBy: string;
  /** Sum of this chama's postings in the ledger. */
  posted: bigint;
  members: Record<string, ChamaMember>;
  invitations: Record<string, ChamaInvitation>;
  former: Record<string, FormerMember>;
  rules: ChamaRules;
  /** Withdrawals that still hold money, by id. */
  withdrawals: Record<string, ChamaWithdrawal>;
  recent: CountedWithdrawal[];
  ended: EndedWithdrawal[];
}

export function emptyChamaContext(chamaId: string): ChamaContext {
  return {
    chamaId,
    name: "",
    asset: "",
    createdBy: "",
    posted: 0n,
    members: {},
    invitations: {},
    former: {},
    rules: DEFAULT_CHAMA_RULES,
    withdrawals: {},
    recent: [],
    ended: [],
  };
}

/** Milliseconds since the epoch. A time that does not parse is a host bug, never a business outcome. */
export function timeOf(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not an ISO time: ${JSON.stringify(iso)}`);
  return ms;
}

/**
 * A record's own entry. Ids come from outside, and `members["constructor"]` must not find the
 * object prototype's constructor and call it a member.
 */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export function withoutKey<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const { [key]: _gone, ...rest } = record;
  return rest;
}

/** Drop keys whose value is undefined, so effects and snapshots survive a JSON round trip unchanged. */
export function defined<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as T;
}

/** Where someone stands with a chama now; "revoked" is an invitation taken back (or no standing at all). */
export type PersonStatus = "member" | "invited" | "former" | "revoked";

/** A person as the chama sees them now: what the member rows and the member view both show. */
export function personOf(context: ChamaContext, personId: string) {
  const member = own(context.members, personId);
  const invited = own(context.invitations, personId);
  const former = own(context.former, personId);
  const status: PersonStatus = member ? "member" : invited ? "invited" : former ? "former" : "revoked";
  return {
    role: member?.role ?? invited?.role ?? null,
    status,
    contributed: member?.contributed ?? former?.contributed ?? 0n,
    withdrawn: member?.withdrawn ?? former?.withdrawn ?? 0n,
  };
}

export function heldOf(context: ChamaContext): bigint {
  let held = 0n;
  for (const withdrawal of Object.values(context.withdrawals)) if (!inTransit(withdrawal)) held += withdrawal.amount;
  return held;
}

export function availableOf(context: ChamaContext): bigint {
  return context.posted - heldOf(context);
}

export function isAdmin(context: ChamaContext, memberId: string): boolean {
  return own(context.members, memberId)?.role === "admin";
}

export function adminCount(context: ChamaContext): number {
  let admins = 0;
  for (const member of Object.values(context.members)) if (member.role === "admin") admins++;
  return admins;
}

/** Admins who could approve a request by `requesterId` (never the requester). */
export function eligibleApprovers(context: ChamaContext, requesterId: string): number {
  return adminCount(context) - (isAdmin(context, requesterId) ? 1 : 0);
}

/** Who is acting: the member (or SYSTEM_ACTOR) a command is on behalf of. */
export function actorOf(command: ChamaCommand): string {
  switch (command.type) {
    case "chama.open":
      return command.createdBy;
    case "chama.member.accept":
    case "chama.deposit":
    case "chama.withdrawal.request":
    case "chama.transfer.credit":
      return command.memberId;
    case "chama.withdrawal.review":
      return command.reviewerId;
    case "chama.withdrawal.complete":
    case "chama.withdrawal.fail":
    case "chama.withdrawal.expire":
    case "chama.withdrawal.hold":
    case "chama.withdrawal.settle":
    case "chama.withdrawal.void":
      return SYSTEM_ACTOR;
    default:
      return command.by;
  }
}

/** Counted withdrawals requested in the `spanMs` up to `nowMs` (the span is open at its start). */
export function countedIn(recent: readonly CountedWithdrawal[], nowMs: number, spanMs: number): { amount: bigint; count: number } {
  let amount = 0n;
  let count = 0;
  for (const counted of recent) {
    if (timeOf(counted.at) > nowMs - spanMs) {
      amount += counted.amount;
      count++;
    }
  }
  return { amount, count };
}

/** Only what any limit can still see at `nowMs`. */
export function pruneRecent(recent: readonly CountedWithdrawal[], rules: ChamaRules, nowMs: number): CountedWithdrawal[] {
  const spanMs = Math.max(DAY_MS, rules.windowMs);
  return recent.filter((counted) => timeOf(counted.at) > nowMs - spanMs);
}

/** Open withdrawals whose lifetime has passed at `at` and that can still be expired (not paying out). */
export function overdueWithdrawalIds(context: ChamaContext, at: string): string[] {
  const nowMs = timeOf(at);
  return Object.entries(context.withdrawals)
    .filter(([, w]) => w.status !== "processing" && timeOf(w.expiresAt) <= nowMs)
    .map(([id]) => id);
}

/** The earliest time an open withdrawal becomes expirable, for the host's timer; null when none. */
export function nextExpiryAt(context: ChamaContext): string | null {
  let next: string | null = null;
  for (const w of Object.values(context.withdrawals)) {
    if (w.status === "processing") continue;
    if (next === null || timeOf(w.expiresAt) < timeOf(next)) next = w.expiresAt;
  }
  return next;
}

/** Rules after a change: only the fields given replace the current ones. */
export function mergeRules(rules: ChamaRules, patch: Partial<ChamaRules>): ChamaRules {
  const merged: Record<string, unknown> = { ...rules };
  for (const [key, value] of Object.entries(patch)) if (value !== undefined && key in rules) merged[key] = value;
  return merged as ChamaRules;
}

const RULE_KEYS = Object.keys(DEFAULT_CHAMA_RULES);

/** Why a rules change is malformed, or undefined when it is well formed. */
export function rulesProblem(patch: Partial<ChamaRules>): string | undefined {
  const given = Object.entries(patch).filter(([, value]) => value !== undefined);
  if (!given.length) return "no rule to change was given";
  const unknown = given.find(([key]) => !RULE_KEYS.includes(key));
  if (unknown) return `${unknown[0]} is not a chama rule`;
  const count = (value: unknown, max: number) => typeof value === "number" && Number.isSafeInteger(value) && value >= 1 && value <= max;
  const money = (value: unknown) => value === null || (typeof value === "bigint" && value > 0n);
  const span = (value: unknown, min: number, max: number) => typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;
  if (patch.approvalsRequired !== undefined && !count(patch.approvalsRequired, CHAMA_LIMITS.membersMax)) {
    return "approvalsRequired must be a whole number of at least 1";
  }
  if (patch.rejectionsToReject !== undefined && !count(patch.rejectionsToReject, CHAMA_LIMITS.membersMax)) {
    return "rejectionsToReject must be a whole number of at least 1";
  }
  if (patch.maxPerWithdrawal !== undefined && !money(patch.maxPerWithdrawal)) return "maxPerWithdrawal must be a positive amount or null";
  if (patch.maxPerDay !== undefined && !money(patch.maxPerDay)) return "maxPerDay must be a positive amount or null";
  if (
    patch.maxWithdrawalsPerWindow !== undefined &&
    patch.maxWithdrawalsPerWindow !== null &&
    !count(patch.maxWithdrawalsPerWindow, CHAMA_LIMITS.recentMax)
  ) {
    return `maxWithdrawalsPerWindow must be a whole number from 1 to ${CHAMA_LIMITS.recentMax}, or null`;
  }
  if (patch.windowMs !== undefined && !span(patch.windowMs, CHAMA_LIMITS.windowMsMin, CHAMA_LIMITS.windowMsMax)) {
    return `windowMs must be from ${CHAMA_LIMITS.windowMsMin} to ${CHAMA_LIMITS.windowMsMax}`;
  }
  if (
    patch.requestLifetimeMs !== undefined &&
    !span(patch.requestLifetimeMs, CHAMA_LIMITS.requestLifetimeMsMin, CHAMA_LIMITS.requestLifetimeMsMax)
  ) {
    return `requestLifetimeMs must be from ${CHAMA_LIMITS.requestLifetimeMsMin} to ${CHAMA_LIMITS.requestLifetimeMsMax}`;
  }
  return undefined;
}

/**
 * What must be true of every chama after every command. Breaking one is a programmer error: it
 * throws, the actor fails the batch and nothing is persisted.
 */
export function assertChamaInvariants(context: ChamaContext): void {
  const fail = (what: string) => {
    throw new Error(`chama ${context.chamaId}: ${what}`);
  };
  if (context.posted < 0n) fail(`posted is negative (${context.posted})`);
  const held = heldOf(context);
  if (held > context.posted) fail(`held ${held} exceeds posted ${context.posted}`);
  for (const [id, w] of Object.entries(context.withdrawals)) {
    if (w.amount <= 0n) fail(`withdrawal ${id} has a non-positive amount`);
    if (w.approvals.includes(w.memberId)) fail(`withdrawal ${id} is approved by its own requester`);
  }
  if (Object.keys(context.members).length > CHAMA_LIMITS.membersMax) fail("too many members");
  if (Object.keys(context.invitations).length > CHAMA_LIMITS.invitationsMax) fail("too many invitations");
  if (Object.keys(context.former).length > CHAMA_LIMITS.formerMax) fail("too many former members");
  if (Object.keys(context.withdrawals).length > CHAMA_LIMITS.openWithdrawalsMax) fail("too many open withdrawals");
  if (context.recent.length > CHAMA_LIMITS.recentMax) fail("too many counted withdrawals");
  if (context.ended.length > CHAMA_LIMITS.endedMax) fail("too many ended withdrawals");
  if (context.createdBy) {
    const admins = adminCount(context);
    if (admins < 1) fail("no admin left");
    if (admins < context.rules.approvalsRequired) fail(`${admins} admins cannot give ${context.rules.approvalsRequired} approvals`);
  }
}
