import { createActor } from "xstate";
import type { DepositCommand, DepositEffect } from "../machines/deposit.events";
import { depositMachineWith, type DepositContext } from "../machines/deposit.machine";
import type { AmountCeiling } from "../machines/limits";
import { checkDepositCommand } from "./command-policy";
import type { ActorKind, AnyEffect } from "./actor-kind";
import { depositRows, loadDeposit, type DepositSnapshot } from "./deposit-store";
import type { CommitQueue } from "./commit-queue";
import type { Reply } from "./envelope";

export type RenderDeposit = (command: DepositCommand, effects: DepositEffect[], context: DepositContext, status: string) => Reply;

/**
 * Deposits: one actor per card deposit, so everything Stripe and callers say about one deposit
 * (events delivered twice or shuffled, refunds racing) is applied one at a time and deduplicated
 * by key. Loaded from `deposits`, each batch committed in its own transaction (deposit-store.ts).
 */
export function depositKind(commits: CommitQueue, render: RenderDeposit, ceiling: AmountCeiling, afterCommit?: (effects: DepositEffect[]) => void): ActorKind {
  const machine = depositMachineWith(ceiling);
  return {
    name: "deposit",
    load: loadDeposit,
    check: (principal, command, snapshot) => checkDepositCommand(principal, command as DepositCommand, snapshot.context as DepositContext),
    start: (snapshot, depositId) => createActor(machine, { snapshot: snapshot as DepositSnapshot, input: { depositId } }),
    render: (command, effects, snapshot) => render(command as DepositCommand, effects as DepositEffect[], snapshot.context as DepositContext, String(snapshot.value)),
    commit: (write) => commits.commit({ ...write, kind: depositRows }),
    ...(afterCommit ? { afterCommit: (effects: AnyEffect[]) => afterCommit(effects as DepositEffect[]) } : {}),
  };
}
