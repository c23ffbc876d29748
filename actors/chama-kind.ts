import { createActor } from "xstate";
import type { ChamaContext } from "../machines/chama.context";
import type { ChamaCommand, ChamaEffect } from "../machines/chama.events";
import { chamaMachine } from "../machines/chama.machine";
import type { Db } from "../src/db/client";
import type { ActorKind, AnyEffect } from "./actor-kind";
import { commitChama, loadChama, type ChamaSnapshot } from "./chama-store";
import type { Outcome } from "./envelope";

export type RenderChama = (command: ChamaCommand, effects: ChamaEffect[], context: ChamaContext, status: string) => Outcome;

/** Chamas: loaded from `chamas`, each batch committed in its own transaction (chama-store.ts). */
export function chamaKind(db: Db, render: RenderChama, afterCommit?: (effects: ChamaEffect[]) => void): ActorKind {
  return {
    name: "chama",
    load: loadChama,
    start: (snapshot, chamaId) => createActor(chamaMachine, { snapshot: snapshot as ChamaSnapshot, input: { chamaId } }),
    render: (command, effects, snapshot) =>
      render(command as ChamaCommand, effects as ChamaEffect[], snapshot.context as ChamaContext, String(snapshot.value)),
    commit: (write) => commitChama(db, write),
    ...(afterCommit ? { afterCommit: (effects: AnyEffect[]) => afterCommit(effects as ChamaEffect[]) } : {}),
  };
}
