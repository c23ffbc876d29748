import { describe, expect, test } from "bun:test";
import { transition } from "xstate";
import type { ChamaCommand, ChamaEffect } from "../../machines/chama.events";
import { chamaMachineWith } from "../../machines/chama.machine";
import type { WalletCommand, WalletEffect } from "../../machines/wallet.events";
import { walletMachineWith } from "../../machines/wallet.machine";
import { activeWallet, AT, type Command } from "./drive";
import { chama, type ChamaCmd, T0 } from "./chama.drive";

/**
 * The machines refuse amounts above the configured maximum themselves (the host builds them with
 * it), so no path to an actor, a forged bus message included, can move more than MAX_AMOUNT.
 */
const USD_MAX = 1_000_00n;
const ceiling = (asset: string) => (asset === "USD" || asset === "KES" ? USD_MAX : 0n);

function walletEffects(command: Command): WalletEffect[] {
  const machine = walletMachineWith(ceiling);
  // A snapshot made by another machine would carry that machine's guards: re-resolve it (as createActor does).
  const { value, context } = activeWallet(10_000_00n);
  const [, actions] = transition(machine, machine.resolveState({ value, context }), { ...command, at: AT } as WalletCommand);
  return (actions as unknown as { type: string; params?: { event: WalletEffect } }[]).flatMap((a) => (a.type === "xstate.emit" ? [a.params!.event] : []));
}

function chamaEffects(command: ChamaCmd): ChamaEffect[] {
  const machine = chamaMachineWith(ceiling);
  const { value, context } = chama({ admins: ["a1", "a2"], members: ["m1"], deposits: { m1: 10_000_00n } });
  const [, actions] = transition(machine, machine.resolveState({ value, context }), { at: T0, ...command } as ChamaCommand);
  return (actions as unknown as { type: string; params?: { event: ChamaEffect } }[]).flatMap((a) => (a.type === "xstate.emit" ? [a.params!.event] : []));
}

const destination = { masked: { type: "bank" }, sealed: { kid: "e1", iv: "aa", ct: "bb", tag: "cc" } };
const walletCommands = (amount: bigint): Command[] => [
  { type: "wallet.credit", journalId: "j1", amount },
  { type: "wallet.payment", journalId: "j2", amount },
  { type: "withdrawal.request", withdrawalId: "w1", amount, destination },
  { type: "transfer.reserve", transferId: "t1", journalId: "j3", toWalletId: "w-2", amount },
  { type: "transfer.credit", transferId: "t2", journalId: "j4", fromWalletId: "w-3", asset: "USD", amount },
];

describe("the wallet machine built with a maximum", () => {
  for (const command of walletCommands(USD_MAX + 1n)) {
    test(`refuses ${command.type} one unit above the maximum with LIMIT_EXCEEDED`, () => {
      expect(walletEffects(command)).toEqual([{ type: "rejected", code: "LIMIT_EXCEEDED", detail: expect.any(String) }]);
    });
  }
  for (const command of walletCommands(USD_MAX)) {
    test(`takes ${command.type} of exactly the maximum`, () => {
      expect(walletEffects(command).map((e) => e.type)).not.toContain("rejected");
    });
  }
});

describe("the chama machine built with a maximum", () => {
  test("refuses a deposit or a withdrawal request one unit above the maximum with LIMIT_EXCEEDED", () => {
    for (const command of [
      { type: "chama.deposit", journalId: "j1", memberId: "m1", amount: USD_MAX + 1n, via: "admin#ops" },
      { type: "chama.withdrawal.request", withdrawalId: "w1", memberId: "m1", amount: USD_MAX + 1n, destination },
    ] as ChamaCmd[]) {
      expect(chamaEffects(command)).toEqual([{ type: "rejected", code: "LIMIT_EXCEEDED", detail: expect.any(String) }]);
    }
  });
  test("takes a deposit of exactly the maximum", () => {
    const effects = chamaEffects({ type: "chama.deposit", journalId: "j1", memberId: "m1", amount: USD_MAX, via: "admin#ops" });
    expect(effects.map((e) => e.type)).toContain("chama.deposited");
  });
});
