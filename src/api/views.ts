import type { Reply } from "../../actors/envelope";
import type { Destination, WalletCommand, WalletEffect } from "../../machines/wallet.events";
import { availableOf, heldOf, type WalletContext } from "../../machines/wallet.machine";
import { ERROR_STATUS, problem } from "../../lib/errors";
import type { Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";

/**
 * How resources look to callers. Amounts leave as decimal strings with exactly the asset's scale;
 * destinations leave masked (the full account or address is never echoed back).
 */
const fmt = (minor: bigint | string, asset: string) => formatAmount(BigInt(minor), asset as Asset);

export function walletView(w: { walletId: string; ownerId: string; asset: string; status: string; posted: bigint; held: bigint; version?: number }) {
  return {
    id: w.walletId,
    ownerId: w.ownerId,
    asset: w.asset,
    status: w.status,
    balance: { posted: fmt(w.posted, w.asset), held: fmt(w.held, w.asset), available: fmt(w.posted - w.held, w.asset) },
    ...(w.version === undefined ? {} : { version: w.version }),
  };
}

export function maskDestination(d: Destination | Record<string, unknown>): Record<string, string> {
  const tail = (s: unknown, n: number) => (typeof s === "string" ? s.replace(/\s/g, "").slice(-n) : "");
  if (d.type === "bank") return { type: "bank", account: `****${tail(d.account, 4)}` };
  if (d.type === "crypto") {
    const address = typeof d.address === "string" ? d.address : "";
    return { type: "crypto", network: String(d.network), address: address.length > 10 ? `${address.slice(0, 6)}…${address.slice(-4)}` : "****" };
  }
  return { type: "unknown" };
}

export function withdrawalView(w: {
  id: string;
  walletId: string;
  asset: string;
  amount: bigint | string;
  status: string;
  /** As stored: sealed with its masked form. Only the masked form is ever shown. */
  destination?: { masked?: Record<string, string> };
  reason?: string | null;
  createdAt?: string;
  updatedAt: string;
}) {
  return {
    id: w.id,
    walletId: w.walletId,
    asset: w.asset,
    amount: fmt(w.amount, w.asset),
    status: w.status,
    ...(w.destination?.masked ? { destination: w.destination.masked } : {}),
    ...(w.reason ? { reason: w.reason } : {}),
    ...(w.createdAt ? { createdAt: w.createdAt } : {}),
    updatedAt: w.updatedAt,
  };
}

export function transferView(t: {
  id: string;
  fromWalletId: string;
  toWalletId: string;
  asset: string;
  amount: bigint | string;
  status: string;
  reason?: string | null;
  createdAt: string;
  updatedAt: string;
}) {
  return {
    id: t.id,
    fromWalletId: t.fromWalletId,
    toWalletId: t.toWalletId,
    asset: t.asset,
    amount: fmt(t.amount, t.asset),
    status: t.status,
    ...(t.reason ? { reason: t.reason } : {}),
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

/** The outcome a wallet command's caller hears, built from what the machine emitted. */
export function renderWalletOutcome(command: WalletCommand, effects: WalletEffect[], context: WalletContext): Reply {
  const first = effects[0]!;
  if (first.type === "rejected") return { status: ERROR_STATUS[first.code], body: problem(first.code, first.detail) };
  const wallet = (status: number, state: string): Reply => ({
    status,
    body: walletView({ ...context, status: state, held: heldOf(context) }) as Record<string, unknown>,
  });
  switch (first.type) {
    case "wallet.opened":
      return wallet(201, "active");
    case "wallet.frozen":
      return wallet(200, "frozen");
    case "wallet.unfrozen":
      return wallet(200, "active");
    case "wallet.closed":
      return wallet(200, "closed");
    case "wallet.credited":
    case "wallet.paid":
      return {
        status: 201,
        body: {
          id: first.journal.id,
          walletId: first.walletId,
          kind: first.journal.kind,
          asset: first.asset,
          amount: fmt(first.journal.postings[1]!.amount, first.asset),
          ...(first.journal.reference ? { reference: first.journal.reference } : {}),
          balance: { available: fmt(availableOf(context), first.asset) },
          createdAt: first.at,
        },
      };
    case "withdrawal.changed":
      return {
        status: command.type === "withdrawal.request" ? 201 : 200,
        body: withdrawalView({
          id: first.withdrawalId,
          walletId: first.walletId,
          asset: first.asset,
          amount: first.amount,
          status: first.status,
          ...(first.destination ? { destination: first.destination, createdAt: first.at } : {}),
          ...(first.reason ? { reason: first.reason } : {}),
          updatedAt: first.at,
        }),
      };
    case "transfer.reserved":
      return {
        status: 201,
        body: transferView({
          id: first.transferId,
          fromWalletId: first.walletId,
          toWalletId: first.toWalletId,
          asset: first.asset,
          amount: first.amount,
          status: "pending",
          createdAt: first.at,
          updatedAt: first.at,
        }),
      };
    case "transfer.credited":
    case "transfer.settled":
    case "transfer.voided":
      return { status: 200, body: { transferId: first.transferId, step: first.type } };
  }
}
