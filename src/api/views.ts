import type { Reply } from "../../actors/envelope";
import type { z } from "zod";
import type { WalletCommand, WalletEffect } from "../../machines/wallet.events";
import { availableOf, heldOf, type WalletContext } from "../../machines/wallet.machine";
import { ERROR_STATUS, problem } from "../../lib/errors";
import { isAsset, type Asset } from "../../lib/assets";
import { formatAmount } from "../../lib/money";
import { contributionView } from "./contribution-view";
import type { Destination } from "./schemas";

type DestinationInput = z.output<typeof Destination>;

/**
 * How resources look to callers. Amounts leave as decimal strings with exactly the asset's scale;
 * destinations leave masked (the full account or address is never echoed back).
 */
const fmt = (minor: bigint | string, asset: string) => formatAmount(BigInt(minor), asset as Asset);

/**
 * A wallet's balance. posted − held is what it may spend; when a dispute took more than that, it is
 * below zero: then `available` is 0 and `debt` (shown only then) is what the wallet owes (money
 * leaving it is refused with WALLET_IN_DEBT until credits have paid it). So available − debt =
 * posted − held, always.
 */
export function balanceOf(posted: bigint, held: bigint, asset: string) {
  const free = posted - held;
  return { posted: fmt(posted, asset), held: fmt(held, asset), available: fmt(free > 0n ? free : 0n, asset), ...(free < 0n ? { debt: fmt(-free, asset) } : {}) };
}

/** A wallet, the same from every route: its version is the snapshot's (a change answers with the version it committed). */
export function walletView(w: { walletId: string; ownerId: string; asset: string; status: string; posted: bigint; held: bigint; version: number }) {
  return {
    id: w.walletId,
    ownerId: w.ownerId,
    asset: w.asset,
    status: w.status,
    balance: balanceOf(w.posted, w.held, w.asset),
    version: w.version,
  };
}

/**
 * A bank number as callers may see it: its last four characters at most, and none of it when it is
 * eight characters or shorter (four would be half of it): `****3000`, `****`.
 */
export function lastFour(value: unknown): string {
  const plain = typeof value === "string" ? value.replace(/[\s-]/g, "") : "";
  return plain.length > 8 ? `****${plain.slice(-4)}` : "****";
}

/**
 * A destination as callers see it: a bank account by its last four at most, an address by its ends
 * (first six, last four). A Lightning invoice is shown as its network and the amount it pays
 * (`amount`, the withdrawal's, which the invoice's equals when it names one), never any of it: an
 * invoice is a bearer request anyone holding it could pay or probe.
 */
export function maskDestination(d: DestinationInput | Record<string, unknown>, amount?: string): Record<string, string> {
  switch (d.type) {
    case "bank":
    case "us_bank":
    case "ke_bank":
      return { type: d.type, account: lastFour(d.account) };
    case "bank_token":
      return { type: d.type, token: lastFour(d.token) };
    case "stripe_account":
      return { type: d.type, account: lastFour(d.account) };
  }
  if (d.type === "crypto" && d.network === "lightning") {
    return { type: "crypto", network: "lightning", ...(amount !== undefined ? { amount } : {}) };
  }
  if (d.type === "crypto") {
    const address = typeof d.address === "string" ? d.address : "";
    return { type: "crypto", network: String(d.network), address: address.length > 10 ? `${address.slice(0, 6)}…${address.slice(-4)}` : "****" };
  }
  return { type: "unknown" };
}

/**
 * An answer with the fields it lacks taken from `stored`, keys in the order `keys` gives (a view's
 * schema's): how a step's answer, rendered by the actor from what the step changed, gets what never
 * changes about its object from the object's row, so it has the one shape reads have.
 */
export function fillIn(body: Record<string, unknown>, stored: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...stored, ...body };
  return Object.fromEntries(keys.filter((k) => merged[k] !== undefined).map((k) => [k, merged[k]]));
}

/**
 * A machine's context as operators read it: every amount (a bigint, in the asset's smallest unit)
 * twice and labelled, `<name>Minor` ("1250") and `<name>` as the decimal every other answer shows
 * ("12.50"). Depth and width are bounded by the machine's own limits; this walks what is there.
 */
export function labelledAmounts(value: unknown, asset: string): unknown {
  if (Array.isArray(value)) return value.map((v) => labelledAmounts(v, asset));
  if (value === null || typeof value !== "object") return typeof value === "bigint" ? value.toString() : value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "bigint") {
      out[`${k}Minor`] = v.toString();
      // An actor for nothing yet (no asset) has only zeros to show, in minor units.
      if (isAsset(asset)) out[k] = fmt(v, asset);
    } else {
      out[k] = labelledAmounts(v, asset);
    }
  }
  return out;
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
export function renderWalletOutcome(command: WalletCommand, effects: WalletEffect[], context: WalletContext, version: number): Reply {
  const first = effects[0]!;
  if (first.type === "rejected") return { status: ERROR_STATUS[first.code], body: problem(first.code, first.detail) };
  const wallet = (status: number, state: string): Reply => ({
    status,
    body: walletView({ ...context, status: state, held: heldOf(context), version }) as Record<string, unknown>,
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
      // To a chama: a member's contribution (POST /v1/chamas/:chamaId/contributions).
      if (first.toChamaId !== undefined) {
        return {
          status: 201,
          body: contributionView({
            id: first.transferId,
            chamaId: first.toChamaId,
            fromWalletId: first.walletId,
            memberId: first.memberId ?? context.ownerId,
            asset: first.asset,
            amount: first.amount,
            status: "pending",
            createdAt: first.at,
            updatedAt: first.at,
          }),
        };
      }
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
    // Steps of the deposit saga (system only): what it needs to know is that the step was booked.
    case "deposit.credited":
    case "deposit.refund.debited":
    case "deposit.refund.returned":
    case "deposit.dispute.debited":
    case "deposit.dispute.returned":
      return { status: 200, body: { depositId: first.depositId, step: first.type, journalId: first.journal.id } };
  }
}
