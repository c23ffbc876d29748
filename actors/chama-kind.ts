import { createActor } from "xstate";
import type { ChamaContext } from "../machines/chama.context";
import type { ChamaCommand, ChamaEffect } from "../machines/chama.events";
import { chamaMachineWith } from "../machines/chama.machine";
import type { AmountCeiling } from "../machines/limits";
import { checkChamaCommand } from "./command-policy";
import type { ActorKind, AnyEffect } from "./actor-kind";
import { chamaRows, loadChama, type ChamaSnapshot } from "./chama-store";
import type { CommitQueue } from "./commit-queue";
import type { Reply } from "./envelope";

export type RenderChama = (command: ChamaCommand, effects: ChamaEffect[], context: ChamaContext, status: string) => Reply;

/** Chamas: loaded from `chamas`, each batch committed in its own transaction (chama-store.ts). */
export function chamaKind(commits: CommitQueue, render: RenderChama, ceiling: AmountCeiling, afterCommit?: (effects: ChamaEffect[]) => void): ActorKind {
  const machine = chamaMachineWith(ceiling);
  return {
    name: "chama",
    load: loadChama,
    check: (principal, command, snapshot) => checkChamaCommand(principal, command as ChamaCommand, snapshot.context as ChamaContext),
    start: (snapshot, chamaId) => createActor(machine, { snapshot: snapshot as ChamaSnapshot, input: { chamaId } }),
    render: (command, effects, snapshot) =>
      render(command as ChamaCommand, effects as ChamaEffect[], snapshot.context as ChamaContext, String(snapshot.value)),
    commit: (write) => commits.commit({ ...write, kind: chamaRows }),
    ...(afterCommit ? { afterCommit: (effects: AnyEffect[]) => afterCommit(effects as ChamaEffect[]) } : {}),
  };
}
