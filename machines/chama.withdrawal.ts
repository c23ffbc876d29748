import { setup, transition } from "xstate";

/**
 * The life of one chama withdrawal. Pure: it only says which status follows which step. The chama
 * machine asks it before anything else happens to a withdrawal, so an illegal step (approve after
 * reject, continue twice, cancel while the payout is in flight) is refused in one place.
 *
 * `requested` is where every withdrawal starts; the request command submits it at once, so an open
 * withdrawal is never seen resting there. `review` is one admin's vote that does not yet decide.
 */
export type ChamaWithdrawalStep =
  | "submit"
  | "review"
  | "approve"
  | "reject"
  | "park"
  | "continue"
  | "complete"
  | "fail"
  | "cancel"
  | "expire";

export type ChamaWithdrawalStatus =
  | "requested"
  | "pending_approval"
  | "manual_review"
  | "approved"
  | "processing"
  | "completed"
  | "failed"
  | "rejected"
  | "expired"
  | "cancelled";

/** Statuses that still hold money. */
export const OPEN_CHAMA_WITHDRAWAL_STATUSES = ["pending_approval", "manual_review", "approved", "processing"] as const;
export type OpenChamaWithdrawalStatus = (typeof OPEN_CHAMA_WITHDRAWAL_STATUSES)[number];

/** Statuses a withdrawal ends in. Only `completed` moved money; the others released the hold. */
export const ENDED_CHAMA_WITHDRAWAL_STATUSES = ["completed", "failed", "rejected", "expired", "cancelled"] as const;
export type EndedChamaWithdrawalStatus = (typeof ENDED_CHAMA_WITHDRAWAL_STATUSES)[number];

/** Not yet paying out: the requester's money is promised but can still be withheld. */
export const UNSTARTED_CHAMA_WITHDRAWAL_STATUSES = ["pending_approval", "manual_review", "approved"] as const;

export const chamaWithdrawalMachine = setup({
  types: {} as { events: { type: ChamaWithdrawalStep } },
}).createMachine({
  id: "chamaWithdrawal",
  initial: "requested",
  states: {
    requested: { on: { submit: "pending_approval" } },
    pending_approval: {
      on: {
        review: "pending_approval",
        approve: "approved",
        reject: "rejected",
        park: "manual_review",
        cancel: "cancelled",
        expire: "expired",
      },
    },
    manual_review: {
      on: {
        review: "manual_review",
        approve: "approved",
        reject: "rejected",
        cancel: "cancelled",
        expire: "expired",
      },
    },
    approved: { on: { continue: "processing", park: "manual_review", cancel: "cancelled", expire: "expired" } },
    processing: { on: { complete: "completed", fail: "failed" } },
    completed: { type: "final" },
    failed: { type: "final" },
    rejected: { type: "final" },
    expired: { type: "final" },
    cancelled: { type: "final" },
  },
});

/** The status after `step`, or undefined when the step is not allowed from `status`. */
export function nextChamaWithdrawalStatus(status: ChamaWithdrawalStatus, step: ChamaWithdrawalStep): ChamaWithdrawalStatus | undefined {
  const from = chamaWithdrawalMachine.resolveState({ value: status, context: undefined });
  if (!from.can({ type: step })) return undefined;
  const [to] = transition(chamaWithdrawalMachine, from, { type: step });
  return to.value as ChamaWithdrawalStatus;
}

export function isOpenStatus(status: ChamaWithdrawalStatus): status is OpenChamaWithdrawalStatus {
  return (OPEN_CHAMA_WITHDRAWAL_STATUSES as readonly string[]).includes(status);
}
