import { setup, transition } from "xstate";

/**
 * The life of one withdrawal. Pure: it only says which status follows which. The wallet machine
 * asks it before moving money, so an illegal step (complete after cancel, cancel while processing)
 * is refused in one place.
 *
 * `returned`: a payout Stripe had paid that the bank sent back later (a `payout.failed` after
 * `payout.paid`, src/workers/payout-worker.ts): the money comes back to the wallet. Only a
 * completed withdrawal can be returned, and only once.
 *
 * `manual_review`: transaction monitoring held a requested withdrawal (src/monitoring/worker.ts, a
 * rule whose outcome is `hold`). Nothing pays it out from there (no process, complete or fail, and
 * no cancel): a platform admin releases it (back to `requested`, where it continues as before) or
 * rejects it (`rejected`: the hold is released, the money stays in the wallet).
 */
export type WithdrawalStep = "process" | "complete" | "fail" | "cancel" | "return" | "hold" | "release" | "reject";
export type WithdrawalStatus = "requested" | "processing" | "completed" | "failed" | "cancelled" | "returned" | "manual_review" | "rejected";

export const withdrawalMachine = setup({
  types: {} as { events: { type: WithdrawalStep } },
}).createMachine({
  id: "withdrawal",
  initial: "requested",
  states: {
    requested: { on: { process: "processing", complete: "completed", fail: "failed", cancel: "cancelled", hold: "manual_review" } },
    manual_review: { on: { release: "requested", reject: "rejected" } },
    processing: { on: { complete: "completed", fail: "failed" } },
    completed: { on: { return: "returned" } },
    failed: { type: "final" },
    cancelled: { type: "final" },
    returned: { type: "final" },
    rejected: { type: "final" },
  },
});

/** The status after `step`, or undefined when the step is not allowed from `status`. */
export function nextWithdrawalStatus(status: WithdrawalStatus, step: WithdrawalStep): WithdrawalStatus | undefined {
  const from = withdrawalMachine.resolveState({ value: status, context: undefined });
  const [to] = transition(withdrawalMachine, from, { type: step });
  return to === from ? undefined : (to.value as WithdrawalStatus);
}
