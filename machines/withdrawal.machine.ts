import { setup, transition } from "xstate";

/**
 * The life of one withdrawal. Pure: it only says which status follows which. The wallet machine
 * asks it before moving money, so an illegal step (complete after cancel, cancel while processing)
 * is refused in one place.
 */
export type WithdrawalStep = "process" | "complete" | "fail" | "cancel";
export type WithdrawalStatus = "requested" | "processing" | "completed" | "failed" | "cancelled";

export const withdrawalMachine = setup({
  types: {} as { events: { type: WithdrawalStep } },
}).createMachine({
  id: "withdrawal",
  initial: "requested",
  states: {
    requested: { on: { process: "processing", complete: "completed", fail: "failed", cancel: "cancelled" } },
    processing: { on: { complete: "completed", fail: "failed" } },
    completed: { type: "final" },
    failed: { type: "final" },
    cancelled: { type: "final" },
  },
});

/** The status after `step`, or undefined when the step is not allowed from `status`. */
export function nextWithdrawalStatus(status: WithdrawalStatus, step: WithdrawalStep): WithdrawalStatus | undefined {
  const from = withdrawalMachine.resolveState({ value: status, context: undefined });
  const [to] = transition(withdrawalMachine, from, { type: step });
  return to === from ? undefined : (to.value as WithdrawalStatus);
}
