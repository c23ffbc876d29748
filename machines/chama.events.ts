import type { ChamaWithdrawalStatus } from "./chama.withdrawal";
import type { Journal } from "./journal";
import type { SealedDestination as Destination } from "./wallet.events";

/**
 * What a chama actor is told (commands) and what it tells the world back (effects).
 * Ids, times and who is acting arrive inside commands: the machine never invents any of them, so
 * replaying the same commands always gives the same effects. Who is acting (`by`, `memberId`,
 * `reviewerId`, `createdBy`) is set by the host from the authenticated caller, never from a body.
 */
export type ChamaRole = "admin" | "member";
export type ReviewDecision = "approve" | "reject";

/** A chama's rules. Money is bigint in the asset's smallest unit; null means "no limit". */
export type ChamaRules = {
  /** Approvals a withdrawal needs, counted among admins other than the requester (M of the admins). */
  approvalsRequired: number;
  /** Rejections that reject a withdrawal (1: one admin saying no is enough). */
  rejectionsToReject: number;
  maxPerWithdrawal: bigint | null;
  /** Sum of withdrawals requested in any rolling 24 h, released ones excluded. */
  maxPerDay: bigint | null;
  /** Withdrawals requested in any rolling `windowMs`, released ones excluded. */
  maxWithdrawalsPerWindow: number | null;
  windowMs: number;
  /** How long a request lives, from the moment it is made until its payout starts. */
  requestLifetimeMs: number;
};

/** Acting as the platform (payout processor, expiry timer) rather than as a member. */
export const SYSTEM_ACTOR = "system";

interface Stamp {
  /** ISO-8601 time the host accepted the command. */
  at: string;
}

export type ChamaCommand = Stamp &
  (
    | { type: "chama.open"; chamaId: string; name: string; asset: string; createdBy: string }
    | { type: "chama.freeze"; by: string }
    | { type: "chama.unfreeze"; by: string }
    | { type: "chama.close"; by: string }
    | { type: "chama.member.invite"; memberId: string; role: ChamaRole; by: string }
    | { type: "chama.member.accept"; memberId: string }
    | { type: "chama.member.add"; memberId: string; role: ChamaRole; by: string }
    | { type: "chama.member.remove"; memberId: string; by: string; reason?: string }
    | { type: "chama.member.role"; memberId: string; role: ChamaRole; by: string }
    | { type: "chama.rules.change"; rules: Partial<ChamaRules>; by: string }
    | { type: "chama.deposit"; journalId: string; memberId: string; amount: bigint; reference?: string; via?: string }
    /** `toWalletId`: paid into this wallet of the requester's (same asset) rather than out to a bank or an address. */
    | { type: "chama.withdrawal.request"; withdrawalId: string; memberId: string; amount: bigint; destination: Destination; toWalletId?: string }
    | { type: "chama.withdrawal.review"; withdrawalId: string; reviewerId: string; decision: ReviewDecision; note?: string }
    | { type: "chama.withdrawal.park"; withdrawalId: string; by: string; note?: string }
    /** `journalId`: the posting out when the withdrawal pays into a wallet (the money leaves for transit at once). */
    | { type: "chama.withdrawal.continue"; withdrawalId: string; by: string; journalId?: string }
    | { type: "chama.withdrawal.complete"; withdrawalId: string; journalId: string; via?: string }
    | { type: "chama.withdrawal.fail"; withdrawalId: string; reason?: string; via?: string }
    | { type: "chama.withdrawal.cancel"; withdrawalId: string; by: string; reason?: string }
    | { type: "chama.withdrawal.expire"; withdrawalId: string }
    // Transaction monitoring (src/monitoring/), platform only: a rule whose outcome is `hold` parks a
    // request in manual review for the platform (SYSTEM_ACTOR; approvals so far are cleared, and the
    // chama's admins cannot review it meanwhile); a platform admin (`by`: `admin#<sub>`, never a
    // member) releases it to the chama's admins, or rejects it (the hold is released).
    | { type: "chama.withdrawal.hold"; withdrawalId: string; note?: string }
    | { type: "chama.withdrawal.release"; withdrawalId: string; by: string; decision: "release" | "reject"; note?: string }
    // Transfers between a chama and its members' wallets (src/workers/transfer-saga.ts), system only:
    // a contribution reserved in the member's wallet arrives (transit → chama); a withdrawal paid into a
    // wallet is settled once the wallet took it, or voided (transit → chama) when it refused.
    | { type: "chama.transfer.credit"; transferId: string; journalId: string; memberId: string; fromWalletId: string; amount: bigint }
    | { type: "chama.withdrawal.settle"; withdrawalId: string }
    | { type: "chama.withdrawal.void"; withdrawalId: string; journalId: string; reason: string }
  );

export type ChamaCommandType = ChamaCommand["type"];

/** Business refusals: data, not exceptions. The host turns them into a stable error code. */
export type ChamaRejectionCode =
  | "CHAMA_NOT_FOUND"
  | "CHAMA_EXISTS"
  | "CHAMA_FROZEN"
  | "CHAMA_CLOSED"
  | "CHAMA_NOT_EMPTY"
  | "NOT_A_MEMBER"
  | "MEMBER_NOT_FOUND"
  | "NOT_INVITED"
  | "MEMBER_EXISTS"
  | "FORBIDDEN"
  | "NOT_ENOUGH_ADMINS"
  | "WITHDRAWAL_EXISTS"
  | "INSUFFICIENT_FUNDS"
  | "LIMIT_EXCEEDED"
  | "VALIDATION_FAILED"
  | "INVALID_TRANSITION";

/** A value an audit record may hold: plain, JSON-able with bigints (see actors/codec.ts). */
export type AuditValue = string | number | bigint | boolean | null | readonly string[];
export type AuditRecord = Readonly<Record<string, AuditValue>>;

interface Subject {
  chamaId: string;
  asset: string;
  at: string;
}

export type ChamaEffect =
  | { type: "rejected"; code: ChamaRejectionCode; detail: string }
  | (Subject & { type: "chama.opened"; name: string; createdBy: string })
  | (Subject & { type: "chama.frozen" | "chama.unfrozen" | "chama.closed"; by: string })
  | (Subject & { type: "chama.member.invited"; memberId: string; role: ChamaRole; by: string })
  | (Subject & { type: "chama.member.joined"; memberId: string; role: ChamaRole; by: string; contributed: bigint })
  | (Subject & { type: "chama.member.removed"; memberId: string; role: ChamaRole; by: string; contributed: bigint; reason?: string })
  | (Subject & { type: "chama.member.invitation_revoked"; memberId: string; by: string })
  | (Subject & { type: "chama.member.role_changed"; memberId: string; before: ChamaRole; after: ChamaRole; by: string })
  | (Subject & { type: "chama.rules.changed"; before: ChamaRules; after: ChamaRules; by: string })
  | (Subject & { type: "chama.deposited"; memberId: string; amount: bigint; contributed: bigint; journal: Journal })
  /** A member's contribution from their wallet arrived: `contributed` is their total after it. */
  | (Subject & { type: "chama.transfer.credited"; transferId: string; memberId: string; fromWalletId: string; amount: bigint; contributed: bigint; journal: Journal })
  | (Subject & {
      type: "chama.withdrawal.reviewed";
      withdrawalId: string;
      reviewerId: string;
      decision: ReviewDecision;
      note?: string;
      /** The withdrawal's status after this review. */
      status: ChamaWithdrawalStatus;
      approvals: readonly string[];
      rejections: readonly string[];
    })
  | (Subject & {
      type: "chama.withdrawal.changed";
      withdrawalId: string;
      memberId: string;
      amount: bigint;
      from: ChamaWithdrawalStatus;
      status: ChamaWithdrawalStatus;
      /** Who made the change: a member id or SYSTEM_ACTOR. */
      by: string;
      approvals: readonly string[];
      rejections: readonly string[];
      /** Where the money goes: on the request and when the payout starts (processing). */
      destination?: Destination;
      /** A withdrawal paid into a member's wallet: that wallet (on every change). */
      toWalletId?: string;
      reason?: string;
      note?: string;
      /**
       * The money moving: out of the chama when completed (or, paid into a wallet, when it starts
       * processing: chama → transit), and back from transit when a wallet refused it (voided).
       */
      journal?: Journal;
    })
  | (Subject & {
      /** One per accepted command: who did what, when, and what it changed. Never holds destinations. */
      type: "chama.audit.recorded";
      actor: string;
      action: ChamaCommandType;
      /** The member or withdrawal acted on, when there is one. */
      target?: string;
      before?: AuditRecord;
      after?: AuditRecord;
      note?: string;
      /** The platform credential that reported it, when the actor is not who acted (a deposit's processor, a payout's). */
      via?: string;
    });

export type ChamaEffectType = ChamaEffect["type"];
