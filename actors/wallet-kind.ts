import { createActor } from "xstate";
import type { WalletCommand, WalletEffect } from "../machines/wallet.events";
import type { AmountCeiling } from "../machines/limits";
import { walletMachineWith, type WalletContext } from "../machines/wallet.machine";
import { checkWalletCommand } from "./command-policy";
import type { ActorKind, AnyEffect } from "./actor-kind";
import type { CommitQueue } from "./commit-queue";
import type { Reply } from "./envelope";
import { loadWallet, walletRows, type WalletSnapshot } from "./wallet-store";

export type RenderWallet = (command: WalletCommand, effects: WalletEffect[], context: WalletContext, version: number) => Reply;

/** Wallets: loaded from `wallets`, committed through the cross-wallet group commit. */
export function walletKind(commits: CommitQueue, render: RenderWallet, ceiling: AmountCeiling, afterCommit?: (effects: WalletEffect[]) => void): ActorKind {
  const machine = walletMachineWith(ceiling);
  return {
    name: "wallet",
    load: loadWallet,
    check: (principal, command, snapshot) => checkWalletCommand(principal, command as WalletCommand, snapshot.context as WalletContext),
    start: (snapshot, walletId) => createActor(machine, { snapshot: snapshot as WalletSnapshot, input: { walletId } }),
    render: (command, effects, snapshot, version) => render(command as WalletCommand, effects as WalletEffect[], snapshot.context as WalletContext, version),
    commit: (w) => commits.commit({ ...w, kind: walletRows }),
    // A hot wallet keeps a batch or two committing behind each other (README "How a command becomes durable").
    commitBehind: (w, after) => commits.commitBehind({ ...w, kind: walletRows }, after),
    ...(afterCommit ? { afterCommit: (effects: AnyEffect[]) => afterCommit(effects as WalletEffect[]) } : {}),
  };
}
