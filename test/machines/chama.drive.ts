import { expect } from "bun:test";
import { initialTransition, transition } from "xstate";
import type { ChamaCommand, ChamaEffect, ChamaRejectionCode, ChamaRules } from "../../machines/chama.events";
import { chamaMachine } from "../../machines/chama.machine";

/**
 * Drives the pure chama machine the way an actor would: `transition` in, the emitted events (its
 * effects) collected from the returned actions. No actor, no clock, no database. Commands carry
 * their own `at`; without one they happen at T0.
 */
export type ChamaSnapshot = ReturnType<typeof chamaMachine.resolveState>;
export type ChamaCmd = ChamaCommand extends infer C ? (C extends ChamaCommand ? Omit<C, "at"> & { at?: string } : never) : never;

export const CHAMA = "c-1";
export const T0 = "2024-03-01T08:00:00.000Z";
export const HOUR_MS = 3_600_000;
export const DAY = 24 * HOUR_MS;

/** The ISO time `ms` after T0. */
export const later = (ms: number): string => new Date(Date.parse(T0) + ms).toISOString();

export interface ChamaStep {
  next: ChamaSnapshot;
  effects: ChamaEffect[];
}

export function step(snapshot: ChamaSnapshot, command: ChamaCmd): ChamaStep {
  const [next, actions] = transition(chamaMachine, snapshot, { at: T0, ...command } as ChamaCommand);
  if (next.status === "error") throw new Error(`chama machine failed on ${command.type}: ${String(next.error)}`);
  const effects = (actions as unknown as { type: string; params?: { event: ChamaEffect } }[]).flatMap((a) =>
    a.type === "xstate.emit" ? [a.params!.event] : [],
  );
  return { next, effects };
}

export const show = (value: unknown): string => JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));

/** Apply commands that must all succeed; returns the final snapshot. */
export function run(snapshot: ChamaSnapshot, ...commands: ChamaCmd[]): ChamaSnapshot {
  for (const command of commands) {
    const { next, effects } = step(snapshot, command);
    if (!effects.length || effects.some((e) => e.type === "rejected")) {
      throw new Error(`setup command ${command.type} did not succeed: ${show(effects)}`);
    }
    snapshot = next;
  }
  return snapshot;
}

export function unopened(chamaId = CHAMA): ChamaSnapshot {
  const [snapshot] = initialTransition(chamaMachine, { chamaId });
  return snapshot;
}

export interface ChamaSetup {
  admins?: string[];
  members?: string[];
  deposits?: Record<string, bigint>;
  rules?: Partial<ChamaRules>;
}

/**
 * An active KES chama opened by the first admin. By default: admins alice, bob, carol; members
 * dave and erin; dave has deposited 1000; one approval needed.
 */
export function chama(setup: ChamaSetup = {}): ChamaSnapshot {
  const admins = setup.admins ?? ["alice", "bob", "carol"];
  const members = setup.members ?? ["dave", "erin"];
  const deposits = setup.deposits ?? { dave: 1000n };
  const creator = admins[0]!;
  const commands: ChamaCmd[] = [
    { type: "chama.open", chamaId: CHAMA, name: "Umoja savings", asset: "KES", createdBy: creator },
    ...admins.slice(1).map((id): ChamaCmd => ({ type: "chama.member.add", memberId: id, role: "admin", by: creator })),
    ...members.map((id): ChamaCmd => ({ type: "chama.member.add", memberId: id, role: "member", by: creator })),
    ...(setup.rules ? [{ type: "chama.rules.change", rules: setup.rules, by: creator } as ChamaCmd] : []),
    ...Object.entries(deposits).map(([id, amount], i): ChamaCmd => ({ type: "chama.deposit", journalId: `j-dep-${i}`, memberId: id, amount })),
  ];
  return run(unopened(), ...commands);
}

/** The command is refused with `code`, emits only that refusal, and state and context are exactly as before. */
export function expectRejected(snapshot: ChamaSnapshot, command: ChamaCmd, code: ChamaRejectionCode): void {
  const { next, effects } = step(snapshot, command);
  expect(effects).toEqual([{ type: "rejected", code, detail: expect.any(String) }]);
  expect(next.value).toEqual(snapshot.value);
  expect(next.context).toEqual(snapshot.context);
}

/** Effects of one type, typed. */
export function ofType<T extends ChamaEffect["type"]>(effects: ChamaEffect[], type: T): Extract<ChamaEffect, { type: T }>[] {
  return effects.filter((e): e is Extract<ChamaEffect, { type: T }> => e.type === type);
}

/** The one effect of this type; fails the test if there is not exactly one. */
export function single<T extends ChamaEffect["type"]>(effects: ChamaEffect[], type: T): Extract<ChamaEffect, { type: T }> {
  const found = ofType(effects, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, got ${show(effects)}`);
  return found[0]!;
}
