import { expect } from "bun:test";
import { initialTransition, transition } from "xstate";
import type { Journal } from "../../machines/journal";
import type { RejectionCode, WalletCommand, WalletEffect } from "../../machines/wallet.events";
import { walletMachine } from "../../machines/wallet.machine";

/**
 * Drives the pure wallet machine the way actors/wallet-actor.ts does: `transition` in, the emitted
 * events (its effects) collected from the returned actions. No actor, no clock, no database.
 */
export type Snapshot = ReturnType<typeof walletMachine.resolveState>;
export type Command = WalletCommand extends infer C ? (C extends WalletCommand ? Omit<C, "at"> : never) : never;

export const WALLET = "w-1";
export const AT = "2024-01-01T00:00:00.000Z";

export interface Step {
  next: Snapshot;
  effects: WalletEffect[];
}

export function step(snapshot: Snapshot, command: Command): Step {
  const [next, actions] = transition(walletMachine, snapshot, { ...command, at: AT } as WalletCommand);
  const effects = (actions as unknown as { type: string; params?: { event: WalletEffect } }[]).flatMap((a) =>
    a.type === "xstate.emit" ? [a.params!.event] : [],
  );
  return { next, effects };
}

/** Apply commands that must all succeed; returns the final snapshot. */
export function run(snapshot: Snapshot, ...commands: Command[]): Snapshot {
  for (const command of commands) {
    const { next, effects } = step(snapshot, command);
    if (!effects.length || effects.some((e) => e.type === "rejected")) {
      throw new Error(`setup command ${command.type} did not succeed: ${JSON.stringify(effects, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
    }
    snapshot = next;
  }
  return snapshot;
}

export function unopened(walletId = WALLET): Snapshot {
  const [snapshot] = initialTransition(walletMachine, { walletId });
  return snapshot;
}

/** An active USD wallet with `posted` minor units credited. */
export function activeWallet(posted = 0n, walletId = WALLET): Snapshot {
  const opened = run(unopened(walletId), { type: "wallet.open", walletId, ownerId: "owner-1", asset: "USD" });
  return posted > 0n ? run(opened, { type: "wallet.credit", journalId: "j-fund", amount: posted }) : opened;
}

/** The command is refused with `code`, and state and context are exactly as before. */
export function expectRejected(snapshot: Snapshot, command: Command, code: RejectionCode): void {
  const { next, effects } = step(snapshot, command);
  expect(effects).toEqual([{ type: "rejected", code, detail: expect.any(String) }]);
  expect(next.value).toEqual(snapshot.value);
  expect(next.context).toEqual(snapshot.context);
}

/** Postings sum to zero and move exactly `amount` from one account to another. */
export function expectMove(journal: Journal | undefined, from: string, to: string, amount: bigint): void {
  expect(journal).toBeDefined();
  const postings = journal!.postings;
  expect(postings.reduce((sum, p) => sum + p.amount, 0n)).toBe(0n);
  expect(postings).toEqual([
    { account: from, amount: -amount },
    { account: to, amount },
  ]);
}
