import type { Db } from "../lib/db";
import { paidByProvider } from "../lib/bank-accounts";
import type { WalletEffect } from "../machines/wallet.events";
import { heldOf, WALLET_MACHINE_VERSION, walletMachine, type WalletContext } from "../machines/wallet.machine";
import { decode, tagBigints } from "./codec";
import { confirmAbsent } from "./store-errors";
import type { AggregateRows } from "./write-path";

/** A wallet's machine state as the actor holds it, plus the version it was loaded at (for fencing). */
export type WalletSnapshot = ReturnType<typeof walletMachine.resolveState>;

export interface Loaded {
  snapshot: WalletSnapshot;
  /** 0 when the wallet has no row yet. */
  version: number;
}

interface PersistedWallet {
  value: string;
  context: WalletContext;
}

export async function loadWallet(db: Db, walletId: string): Promise<Loaded> {
  const [row] = await db`select version, machine_version, snapshot::text as snapshot from wallets where id = ${walletId}`;
  if (!row) await confirmAbsent(db, "wallets", walletId);
  if (!row) return { snapshot: walletMachine.resolveState({ value: "unopened", context: emptyContext(walletId) }), version: 0 };
  if (row.machine_version !== WALLET_MACHINE_VERSION) {
    // Snapshots are written by one machine version; a newer machine must migrate them explicitly.
    throw new Error(`wallet snapshot has machine version ${row.machine_version}, expected ${WALLET_MACHINE_VERSION}`);
  }
  const persisted = decode<PersistedWallet>(row.snapshot);
  return { snapshot: walletMachine.resolveState(persisted), version: Number(row.version) };
}

export function emptyContext(walletId: string): WalletContext {
  return { walletId, ownerId: "", asset: "", posted: 0n, withdrawals: {}, outgoing: {} };
}

export { FencedError, KeysTakenError } from "./store-errors";

/** What a wallet's batch writes besides what every aggregate writes (actors/write-path.ts). */
export const walletRows: AggregateRows = {
  table: "wallets",
  aggregate: (w, to) => {
    const snapshot = w.snapshot as WalletSnapshot;
    const c = snapshot.context;
    const opened = w.effects.find((e) => e.type === "wallet.opened") as { at: string } | undefined;
    return {
      id: w.id,
      from_version: w.fromVersion,
      to_version: to,
      owner_id: c.ownerId,
      asset: c.asset,
      status: String(snapshot.value),
      posted: c.posted.toString(),
      held: heldOf(c).toString(),
      machine_version: WALLET_MACHINE_VERSION,
      snapshot: persistedForm(snapshot),
      created_at: opened?.at ?? w.at,
      updated_at: w.at,
    };
  },
  rows: (w) => ({ withdrawals: withdrawalRows(w.effects as WalletEffect[]), transfers: transferRows(w.effects as WalletEffect[]) }),
  event: (e) => {
    const effect = e as WalletEffect;
    return { saga_pending: effect.type === "transfer.reserved" || effect.type === "transfer.credited", payout_pending: needsPayout(effect) };
  },
};

/**
 * A withdrawal just requested to a destination Stripe holds: marked for the payout worker
 * (src/workers/payout-worker.ts), in the commit that holds its amount. Where Stripe is not
 * configured nothing takes the mark up, and processors step the withdrawal by hand as before.
 */
export function needsPayout(e: WalletEffect): boolean {
  return e.type === "withdrawal.changed" && e.status === "requested" && paidByProvider(e.destination?.masked.type);
}

/** A withdrawal to a crypto network was requested, or an operator released one: the chain pipeline may have work. */
export function needsChainPayout(e: WalletEffect): boolean {
  return e.type === "withdrawal.changed" && e.status === "requested" && e.destination?.masked.type === "crypto";
}

/** The snapshot as stored: its bigints tagged (see codec.ts) so they come back as bigints. */
function persistedForm(snapshot: WalletSnapshot): unknown {
  return tagBigints({ value: snapshot.value, context: snapshot.context } satisfies PersistedWallet);
}

/** One row per withdrawal touched in the batch (a request and its next step may share a batch). */
function withdrawalRows(effects: WalletEffect[]) {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of effects) {
    if (e.type !== "withdrawal.changed") continue;
    const before = rows.get(e.withdrawalId);
    rows.set(e.withdrawalId, {
      id: e.withdrawalId,
      wallet_id: e.walletId,
      asset: e.asset,
      amount: e.amount.toString(),
      status: e.status,
      destination: before?.destination ?? e.destination ?? {},
      reason: e.reason ?? (before?.reason as string | undefined) ?? null,
      created_at: (before?.created_at as string) ?? e.at,
      updated_at: e.at,
    });
  }
  return [...rows.values()];
}

function transferRows(effects: WalletEffect[]) {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of effects) {
    if (e.type !== "transfer.reserved" && e.type !== "transfer.settled" && e.type !== "transfer.voided") continue;
    const before = rows.get(e.transferId);
    rows.set(e.transferId, {
      id: e.transferId,
      from_wallet_id: e.walletId,
      // The receiver: another wallet, or a chama for a member's contribution (exactly one is set).
      to_wallet_id: e.toWalletId ?? null,
      to_chama_id: e.toChamaId ?? null,
      asset: e.asset,
      amount: e.amount.toString(),
      status: e.type === "transfer.reserved" ? "pending" : e.type === "transfer.settled" ? "settled" : "voided",
      reason: e.type === "transfer.voided" ? e.reason : null,
      created_at: (before?.created_at as string) ?? e.at,
      updated_at: e.at,
    });
  }
  return [...rows.values()];
}
