import { emit, enqueueActions, setup } from "xstate";
import { applyCommand, type Cmd, STEP_OF, type WithdrawalStepCommand } from "./chama.apply";
import {
  actorOf,
  adminCount,
  assertChamaInvariants,
  availableOf,
  CHAMA_LIMITS,
  type ChamaContext,
  type ChamaWithdrawal,
  countedIn,
  DAY_MS,
  eligibleApprovers,
  emptyChamaContext,
  isAdmin,
  mergeRules,
  own,
  pruneRecent,
  rulesProblem,
  timeOf,
} from "./chama.context";
import type { ChamaCommand, ChamaEffect, ChamaRejectionCode } from "./chama.events";
import { nextChamaWithdrawalStatus } from "./chama.withdrawal";
import { STORABLE_CEILING, type AmountCeiling } from "./limits";
import { quote } from "../lib/redact";

/**
 * One chama (group wallet): its status (unopened → active ⇄ frozen → closed), its members and
 * rules, and its money. Pure: commands in, new state and effects (emitted events) out. The actor
 * host persists the effects and the snapshot in one transaction; nothing here touches a clock, a
 * database or a random number.
 *
 * Each command's refusals are listed in order, first match wins, before the one branch that
 * applies it; a refusal changes nothing and emits only `rejected`. An accepted command emits its
 * domain effects and then exactly one `chama.audit.recorded`. Every command is handled in every state,
 * so the host never has to guess: an empty effect list would still mean INVALID_TRANSITION.
 * What an accepted command does lives in chama.apply.ts.
 */
export const CHAMA_MACHINE_VERSION = 1;

interface Args {
  context: ChamaContext;
  event: ChamaCommand;
}

const memberIdOf = (event: ChamaCommand): string => (event as { memberId: string }).memberId;
const withdrawalIdOf = (event: ChamaCommand): string => (event as { withdrawalId: string }).withdrawalId;
const amountOf = (event: ChamaCommand): bigint => (event as { amount: bigint }).amount;
const openWithdrawal = (context: ChamaContext, event: ChamaCommand): ChamaWithdrawal | undefined =>
  own(context.withdrawals, withdrawalIdOf(event));

/** Each guard is true when its command must be refused for the reason in its name. */
const guards = {
  actorIsStranger: ({ context, event }: Args) => own(context.members, actorOf(event)) === undefined,
  actorIsNotAdmin: ({ context, event }: Args) => !isAdmin(context, actorOf(event)),
  /** Only for an open withdrawal: one that ended (or never was) is refused as a step, whoever asks. */
  actorIsNeitherAdminNorRequester: ({ context, event }: Args) => {
    const open = openWithdrawal(context, event);
    return open !== undefined && !isAdmin(context, actorOf(event)) && open.memberId !== actorOf(event);
  },
  actorIsNeitherAdminNorTarget: ({ context, event }: Args) => !isAdmin(context, actorOf(event)) && memberIdOf(event) !== actorOf(event),
  actorIsRequester: ({ context, event }: Args) => openWithdrawal(context, event)?.memberId === actorOf(event),

  targetIsKnown: ({ context, event }: Args) =>
    own(context.members, memberIdOf(event)) !== undefined || own(context.invitations, memberIdOf(event)) !== undefined,
  targetIsUnknown: ({ context, event }: Args) =>
    own(context.members, memberIdOf(event)) === undefined && own(context.invitations, memberIdOf(event)) === undefined,
  targetIsNotMember: ({ context, event }: Args) => own(context.members, memberIdOf(event)) === undefined,
  targetIsNotInvited: ({ context, event }: Args) => own(context.invitations, memberIdOf(event)) === undefined,
  roleUnchanged: ({ context, event }: Args) => event.type === "chama.member.role" && own(context.members, event.memberId)?.role === event.role,
  /** The chama keeps at least one admin, and at least as many as a withdrawal needs approvals. */
  leavesTooFewAdmins: ({ context, event }: Args) => {
    if (own(context.members, memberIdOf(event))?.role !== "admin") return false;
    if (event.type === "chama.member.role" && event.role === "admin") return false;
    return adminCount(context) - 1 < Math.max(1, context.rules.approvalsRequired);
  },
  membersFull: ({ context }: Args) => Object.keys(context.members).length >= CHAMA_LIMITS.membersMax,
  invitationsFull: ({ context }: Args) => Object.keys(context.invitations).length >= CHAMA_LIMITS.invitationsMax,

  rulesMalformed: ({ event }: Args) => event.type === "chama.rules.change" && rulesProblem(event.rules) !== undefined,
  rulesNeedMoreAdmins: ({ context, event }: Args) =>
    event.type === "chama.rules.change" && mergeRules(context.rules, event.rules).approvalsRequired > adminCount(context),

  amountNotPositive: ({ event }: Args) => amountOf(event) <= 0n,
  /** Above the configured maximum: the host provides it (chamaMachineWith), this default is the storable one. */
  amountOverMaximum: ({ context, event }: Args) => amountOf(event) > STORABLE_CEILING(context.asset),
  withdrawalIdTaken: ({ context, event }: Args) =>
    openWithdrawal(context, event) !== undefined || context.ended.some((e) => e.withdrawalId === withdrawalIdOf(event)),
  /** The requester never approves their own request, so the other admins must be enough. */
  tooFewApprovers: ({ context, event }: Args) => eligibleApprovers(context, memberIdOf(event)) < context.rules.approvalsRequired,
  tooManyOpen: ({ context }: Args) => Object.keys(context.withdrawals).length >= CHAMA_LIMITS.openWithdrawalsMax,
  tooManyRecent: ({ context, event }: Args) => pruneRecent(context.recent, context.rules, timeOf(event.at)).length >= CHAMA_LIMITS.recentMax,
  overPerWithdrawalMax: ({ context, event }: Args) =>
    context.rules.maxPerWithdrawal !== null && amountOf(event) > context.rules.maxPerWithdrawal,
  overDailyMax: ({ context, event }: Args) =>
    context.rules.maxPerDay !== null && countedIn(context.recent, timeOf(event.at), DAY_MS).amount + amountOf(event) > context.rules.maxPerDay,
  overWindowCount: ({ context, event }: Args) =>
    context.rules.maxWithdrawalsPerWindow !== null &&
    countedIn(context.recent, timeOf(event.at), context.rules.windowMs).count + 1 > context.rules.maxWithdrawalsPerWindow,
  exceedsAvailable: ({ context, event }: Args) => amountOf(event) > availableOf(context),

  /** The withdrawal is not open here, or the withdrawal machine does not allow this step from its status. */
  stepRefused: ({ context, event }: Args) => {
    const open = openWithdrawal(context, event);
    return open === undefined || nextChamaWithdrawalStatus(open.status, STEP_OF[event.type as WithdrawalStepCommand["type"]]) === undefined;
  },
  requestExpired: ({ context, event }: Args) => timeOf(event.at) >= timeOf(openWithdrawal(context, event)!.expiresAt),
  requestNotYetExpired: ({ context, event }: Args) => timeOf(event.at) < timeOf(openWithdrawal(context, event)!.expiresAt),
  alreadyReviewed: ({ context, event }: Args) => {
    const open = openWithdrawal(context, event)!;
    return open.approvals.includes(actorOf(event)) || open.rejections.includes(actorOf(event));
  },

  /** Parked by transaction monitoring: the platform decides first. */
  heldByPlatform: ({ context, event }: Args) => openWithdrawal(context, event)?.heldByPlatform === true,
  notHeldByPlatform: ({ context, event }: Args) => openWithdrawal(context, event)?.heldByPlatform !== true,

  holdsMoney: ({ context }: Args) => context.posted !== 0n || Object.keys(context.withdrawals).length > 0,

  /** Paid into a member's wallet: Coffer moves it itself, no payout processor reports on it. */
  paysIntoWallet: ({ context, event }: Args) => openWithdrawal(context, event)?.toWalletId !== undefined,
  /** Settling or voiding is for withdrawals paid into a wallet only. */
  paysOutElsewhere: ({ context, event }: Args) => openWithdrawal(context, event)?.toWalletId === undefined,
  /** Continuing a withdrawal into a wallet posts the money out at once, so the command must name its journal. */
  journalMissing: ({ context, event }: Args) =>
    openWithdrawal(context, event)?.toWalletId !== undefined && (event as { journalId?: string }).journalId === undefined,
};

type GuardName = keyof typeof guards;

/** A named, parameterised action: `reject(code, detail)` reads like the rule it enforces. */
const reject = (code: ChamaRejectionCode, detail: string) => ({ type: "reject", params: { code, detail } }) as const;
const refuse = (guard: GuardName, code: ChamaRejectionCode, detail: string) => ({ guard, actions: reject(code, detail) }) as const;

const notAMember = refuse("actorIsStranger", "NOT_A_MEMBER", "the caller is not a member of this chama");
const adminsOnly = (what: string) => refuse("actorIsNotAdmin", "FORBIDDEN", `only admins ${what}`);
const overMaximum = refuse("amountOverMaximum", "LIMIT_EXCEEDED", "the amount is above the configured maximum");
const stepNotAllowed = { guard: "stepRefused", actions: "rejectStep" } as const;
const intoWalletBySaga = refuse("paysIntoWallet", "INVALID_TRANSITION", "this withdrawal pays into a member's wallet: Coffer completes or fails it itself");
const apply = { actions: "apply" } as const;

// Handlers shared by active and frozen: a frozen chama still manages its members and rules, reviews,
// cancels and expires requests, and lets a payout already in flight complete or fail.
const commonHandlers = {
  "chama.member.invite": [
    notAMember,
    adminsOnly("invite members"),
    refuse("targetIsKnown", "MEMBER_EXISTS", "this person is already a member or invited"),
    refuse("invitationsFull", "LIMIT_EXCEEDED", "this chama has too many open invitations"),
    apply,
  ],
  "chama.member.accept": [
    refuse("targetIsNotInvited", "NOT_INVITED", "there is no invitation for this person"),
    refuse("membersFull", "LIMIT_EXCEEDED", "this chama has as many members as it can hold"),
    apply,
  ],
  "chama.member.add": [
    notAMember,
    adminsOnly("add members"),
    refuse("targetIsKnown", "MEMBER_EXISTS", "this person is already a member or invited"),
    refuse("membersFull", "LIMIT_EXCEEDED", "this chama has as many members as it can hold"),
    apply,
  ],
  "chama.member.remove": [
    notAMember,
    refuse("actorIsNeitherAdminNorTarget", "FORBIDDEN", "only admins remove other members"),
    { guard: "targetIsUnknown", actions: "rejectUnknownMember" },
    refuse("leavesTooFewAdmins", "NOT_ENOUGH_ADMINS", "the chama would have fewer admins than it needs; add an admin or lower approvalsRequired first"),
    apply,
  ],
  "chama.member.role": [
    notAMember,
    adminsOnly("change roles"),
    { guard: "targetIsNotMember", actions: "rejectUnknownMember" },
    refuse("roleUnchanged", "INVALID_TRANSITION", "the member already has this role"),
    refuse("leavesTooFewAdmins", "NOT_ENOUGH_ADMINS", "the chama would have fewer admins than it needs; add an admin or lower approvalsRequired first"),
    apply,
  ],
  "chama.rules.change": [
    notAMember,
    adminsOnly("change the rules"),
    { guard: "rulesMalformed", actions: "rejectRules" },
    refuse("rulesNeedMoreAdmins", "NOT_ENOUGH_ADMINS", "approvalsRequired cannot exceed the number of admins"),
    apply,
  ],
  "chama.withdrawal.review": [
    notAMember,
    adminsOnly("review withdrawals"),
    stepNotAllowed,
    refuse("actorIsRequester", "FORBIDDEN", "a requester never reviews their own withdrawal"),
    refuse("heldByPlatform", "INVALID_TRANSITION", "this withdrawal is held for the platform's review: a platform admin releases or rejects it first"),
    refuse("requestExpired", "INVALID_TRANSITION", "the withdrawal request has expired"),
    refuse("alreadyReviewed", "INVALID_TRANSITION", "this admin already reviewed this withdrawal"),
    apply,
  ],
  "chama.withdrawal.park": [notAMember, adminsOnly("park withdrawals for manual review"), stepNotAllowed, apply],
  "chama.withdrawal.cancel": [
    notAMember,
    refuse("actorIsNeitherAdminNorRequester", "FORBIDDEN", "only the requester or an admin cancels a withdrawal"),
    stepNotAllowed,
    apply,
  ],
  "chama.withdrawal.complete": [stepNotAllowed, intoWalletBySaga, apply],
  "chama.withdrawal.fail": [stepNotAllowed, intoWalletBySaga, apply],
  // The transfer saga's answer for a withdrawal paid into a wallet (the wallet took it, or refused it).
  "chama.withdrawal.settle": [stepNotAllowed, refuse("paysOutElsewhere", "INVALID_TRANSITION", "this withdrawal does not pay into a wallet"), apply],
  "chama.withdrawal.void": [stepNotAllowed, refuse("paysOutElsewhere", "INVALID_TRANSITION", "this withdrawal does not pay into a wallet"), apply],
  "chama.withdrawal.expire": [stepNotAllowed, refuse("requestNotYetExpired", "INVALID_TRANSITION", "the withdrawal request has not expired yet"), apply],
  // Transaction monitoring (platform only): a hold parks the request; a platform admin releases or rejects it.
  "chama.withdrawal.hold": [stepNotAllowed, apply],
  "chama.withdrawal.release": [refuse("notHeldByPlatform", "INVALID_TRANSITION", "this withdrawal is not held for the platform's review"), apply],
} as const;

const close = [
  notAMember,
  adminsOnly("close the chama"),
  refuse("holdsMoney", "CHAMA_NOT_EMPTY", "only a chama with no money and no open withdrawals can be closed"),
  { target: "closed", actions: "apply" },
] as const;
const exists = { actions: reject("CHAMA_EXISTS", "a chama with this id already exists") } as const;

export const chamaMachine = setup({
  types: {} as {
    context: ChamaContext;
    events: ChamaCommand;
    emitted: ChamaEffect;
    input: { chamaId: string };
  },
  guards,
  actions: {
    reject: emit((_, params: { code: ChamaRejectionCode; detail: string }) => ({ type: "rejected" as const, ...params })),
    rejectUnknownMember: emit(({ context, event }) => ({
      type: "rejected" as const,
      code: "MEMBER_NOT_FOUND" as const,
      detail: `no member ${quote(memberIdOf(event))} in this chama${own(context.invitations, memberIdOf(event)) ? " (they are invited, not yet a member)" : ""}`,
    })),
    rejectStep: emit(({ context, event }) => ({ type: "rejected" as const, code: "INVALID_TRANSITION" as const, detail: stepRefusal(context, event) })),
    rejectRules: emit(({ event }) => ({
      type: "rejected" as const,
      code: "VALIDATION_FAILED" as const,
      detail: rulesProblem((event as Cmd<"chama.rules.change">).rules) ?? "the rules are malformed",
    })),
    apply: enqueueActions(({ context, event, enqueue }) => {
      const { patch, effects } = applyCommand(context, event);
      // Assert before anything is emitted: a broken invariant must never reach the ledger.
      assertChamaInvariants({ ...context, ...patch });
      enqueue.assign(patch);
      for (const effect of effects) enqueue.emit(effect);
    }),
  },
}).createMachine({
  id: "chama",
  initial: "unopened",
  context: ({ input }) => emptyChamaContext(input.chamaId),
  states: {
    unopened: {
      on: {
        "chama.open": { target: "active", actions: "apply" },
        "*": { actions: reject("CHAMA_NOT_FOUND", "chama not found") },
      },
    },

    active: {
      on: {
        "chama.open": exists,
        "chama.freeze": [notAMember, adminsOnly("freeze the chama"), { target: "frozen", actions: "apply" }],
        "chama.unfreeze": { actions: reject("INVALID_TRANSITION", "the chama is not frozen") },
        "chama.close": close,
        "chama.deposit": [
          // The member named is not the caller (a processor or a platform admin reports it): a
          // deposit for someone the chama does not have names them, it does not blame the caller.
          { guard: "actorIsStranger", actions: "rejectUnknownMember" },
          refuse("amountNotPositive", "VALIDATION_FAILED", "a deposit must be a positive amount"),
          overMaximum,
          apply,
        ],
        "chama.withdrawal.request": [
          notAMember,
          refuse("amountNotPositive", "VALIDATION_FAILED", "a withdrawal must be a positive amount"),
          overMaximum,
          refuse("withdrawalIdTaken", "WITHDRAWAL_EXISTS", "a withdrawal with this id already exists"),
          refuse("tooFewApprovers", "NOT_ENOUGH_ADMINS", "there are not enough admins other than the requester to approve it"),
          refuse("overPerWithdrawalMax", "LIMIT_EXCEEDED", "the amount is above this chama's maximum per withdrawal"),
          refuse("overDailyMax", "LIMIT_EXCEEDED", "the amount would take this chama past its daily maximum"),
          refuse("overWindowCount", "LIMIT_EXCEEDED", "this chama has reached its maximum number of withdrawals for the time window"),
          refuse("tooManyOpen", "LIMIT_EXCEEDED", "this chama has too many open withdrawals"),
          refuse("tooManyRecent", "LIMIT_EXCEEDED", "this chama has too many recent withdrawals"),
          refuse("exceedsAvailable", "INSUFFICIENT_FUNDS", "the available balance does not cover this amount"),
          apply,
        ],
        "chama.withdrawal.continue": [
          notAMember,
          refuse("actorIsNeitherAdminNorRequester", "FORBIDDEN", "only the requester or an admin continues a withdrawal"),
          stepNotAllowed,
          refuse("requestExpired", "INVALID_TRANSITION", "the withdrawal request has expired"),
          refuse("journalMissing", "VALIDATION_FAILED", "continuing a withdrawal into a wallet needs the journal of its posting"),
          apply,
        ],
        // A member's contribution from their wallet (the saga's step; the wallet has reserved it). The
        // wallet's owner must still be a member when it arrives; if not, the wallet gets it back.
        "chama.transfer.credit": [
          refuse("targetIsNotMember", "NOT_A_MEMBER", "the wallet's owner is not a member of this chama"),
          refuse("amountNotPositive", "VALIDATION_FAILED", "a contribution must be a positive amount"),
          overMaximum,
          apply,
        ],
      },
    },

    frozen: {
      on: {
        "chama.open": exists,
        "chama.freeze": { actions: reject("INVALID_TRANSITION", "the chama is already frozen") },
        "chama.unfreeze": [notAMember, adminsOnly("unfreeze the chama"), { target: "active", actions: "apply" }],
        "chama.close": close,
        "chama.deposit": { actions: reject("CHAMA_FROZEN", "the chama is frozen") },
        "chama.withdrawal.request": { actions: reject("CHAMA_FROZEN", "the chama is frozen") },
        "chama.withdrawal.continue": { actions: reject("CHAMA_FROZEN", "the chama is frozen") },
        "chama.transfer.credit": { actions: reject("CHAMA_FROZEN", "the chama is frozen") },
      },
    },

    closed: {
      on: {
        "chama.open": exists,
        "chama.close": { actions: reject("INVALID_TRANSITION", "the chama is already closed") },
        "*": { actions: reject("CHAMA_CLOSED", "the chama is closed") },
      },
    },
  },
  on: commonHandlers,
});

/** The chama machine refusing deposits and withdrawals above `ceiling` (the configured maximum). */
export function chamaMachineWith(ceiling: AmountCeiling) {
  return chamaMachine.provide({ guards: { amountOverMaximum: ({ context, event }) => amountOf(event as ChamaCommand) > ceiling(context.asset) } });
}

/** Why a withdrawal step is refused: the withdrawal is unknown, already over, or in the wrong status. */
function stepRefusal(context: ChamaContext, command: ChamaCommand): string {
  const id = withdrawalIdOf(command);
  const open = own(context.withdrawals, id);
  const step = STEP_OF[command.type as WithdrawalStepCommand["type"]];
  if (open) return `cannot ${step} a withdrawal that is ${open.status}`;
  const ended = context.ended.findLast((e) => e.withdrawalId === id);
  if (ended) return `cannot ${step} a withdrawal that is already ${ended.status}`;
  return "there is no open withdrawal with this id on this chama";
}
