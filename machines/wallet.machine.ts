import { assign, emit, enqueueActions, setup } from "xstate";
import { move, SYSTEM_ACCOUNT, type Journal, type JournalKind } from "./journal";
import { receiverOf, senderOf, type RejectionCode, type TransferTo, type WalletCommand, type WalletEffect } from "./wallet.events";
import { nextWithdrawalStatus, type WithdrawalStep } from "./withdrawal.machine";
import { STORABLE_CEILING, type AmountCeiling } from "./limits";
import type { Asset } from "../lib/assets";
import { isFiat } from "../lib/networks";

/**
 * One wallet: its status (unopened → active ⇄ frozen → closed) and its money. Pure: commands in,
 * new state and effects (emitted events) out. The actor host persists the effects and the snapshot
 * in one transaction; nothing here touches a clock, a database or a random number.
 *
 * Every command a state handles emits at least one effect (the result, or `rejected`). A command
 * a state does not handle at all emits nothing, and the host answers INVALID_TRANSITION.
 */
export const WALLET_MACHINE_VERSION = 1;

export interface OpenWithdrawal {
  amount: bigint;
  /** manual_review: held by transaction monitoring until a platform admin releases or rejects it (it still holds its amount). */
  status: "requested" | "processing" | "manual_review";
}

/** Money reserved for a transfer out: to another wallet, or to a chama (a contribution). */
export type OutgoingTransfer = { amount: bigint } & TransferTo;

export interface WalletContext {
  walletId: string;
  ownerId: string;
  asset: string;
  /** Sum of this wallet's postings in the ledger. */
  posted: bigint;
  /** Withdrawals that still hold money (requested or processing). */
  withdrawals: Record<string, OpenWithdrawal>;
  /** Transfers reserved from this wallet and not yet settled or voided. */
  outgoing: Record<string, OutgoingTransfer>;
}

export function heldOf(context: WalletContext): bigint {
  let held = 0n;
  for (const withdrawal of Object.values(context.withdrawals)) held += withdrawal.amount;
  return held;
}

export function availableOf(context: WalletContext): bigint {
  return context.posted - heldOf(context);
}

type Ev<T extends WalletCommand["type"]> = Extract<WalletCommand, { type: T }>;

/** A named, parameterised action: `reject(code, detail)` reads like the rule it enforces. */
const reject = (code: RejectionCode, detail: string) => ({ type: "reject", params: { code, detail } }) as const;

const withoutKey = <T>(record: Record<string, T>, key: string): Record<string, T> => {
  const { [key]: _gone, ...rest } = record;
  return rest;
};

const subject = (context: WalletContext, at: string) => ({ walletId: context.walletId, asset: context.asset, at });

/** One step of an open withdrawal, allowed only where the withdrawal machine allows it. */
/** A withdrawal's money leaving: all to `to`, or, with a chain's flat fee, the fee to system:withdrawal_fees and the rest to `to`. */
function withdrawalJournal(e: { journalId: string; feeMinor?: bigint }, asset: string, walletId: string, to: string, amount: bigint): Journal {
  const fee = e.feeMinor ?? 0n;
  if (fee <= 0n) return move(e.journalId, "withdrawal", asset, walletId, to, amount);
  return {
    id: e.journalId,
    kind: "withdrawal",
    asset,
    postings: [
      { account: walletId, amount: -amount },
      { account: to, amount: amount - fee },
      { account: SYSTEM_ACCOUNT.withdrawalFees, amount: fee },
    ],
  };
}

const withdrawalStep = [
  { guard: "withdrawalAllows", actions: ["emitWithdrawalStep", "applyWithdrawalStep"] },
  { actions: reject("INVALID_TRANSITION", "this step is not allowed for the withdrawal in its current status") },
] as const;

/** Refuses an amount over the ceiling before anything else looks at it. */
const overMaximum = { guard: "overMaximum", actions: reject("LIMIT_EXCEEDED", "the amount is above the configured maximum") } as const;

/** A wallet in debt (a dispute took more than it held) lets nothing leave until credits have covered it. */
const inDebt = { guard: "inDebt", actions: reject("WALLET_IN_DEBT", "the wallet is in debt after a dispute: money may leave it once credits have paid that back") } as const;

type CardStep = Ev<"deposit.credit" | "deposit.refund.debit" | "deposit.refund.return" | "deposit.dispute.debit" | "deposit.dispute.return">;
type CardEffect = Extract<WalletEffect, { depositId: string }>["type"];

/**
 * One booking of card money (src/workers/deposit-saga.ts sends these, each keyed by its deposit,
 * refund or dispute and step, so each happens once): `sign` 1 into the wallet, −1 out of it.
 */
const card = (kind: JournalKind, account: string, sign: 1 | -1, effect: CardEffect) => ({ type: "bookCard", params: { kind, account, sign, effect } }) as const;

export const walletMachine = setup({
  types: {} as {
    context: WalletContext;
    events: WalletCommand;
    emitted: WalletEffect;
    input: { walletId: string };
  },
  actions: {
    reject: emit((_, params: { code: RejectionCode; detail: string }) => ({ type: "rejected" as const, ...params })),
    bookCard: enqueueActions(({ context, event, enqueue }, params: { kind: JournalKind; account: string; sign: 1 | -1; effect: CardEffect }) => {
      const e = event as CardStep;
      const [from, to] = params.sign > 0 ? [params.account, context.walletId] : [context.walletId, params.account];
      enqueue.assign({ posted: context.posted + BigInt(params.sign) * e.amount });
      enqueue.emit({
        type: params.effect,
        ...subject(context, e.at),
        depositId: e.depositId,
        ...("refundId" in e ? { refundId: e.refundId } : {}),
        ...("disputeId" in e ? { disputeId: e.disputeId } : {}),
        amount: e.amount,
        journal: move(e.journalId, params.kind, context.asset, from, to, e.amount),
      });
    }),
    emitWithdrawalStep: emit(({ context, event }) => {
      const e = event as LifecycleEvent;
      const open = context.withdrawals[e.withdrawalId]!;
      const status = nextWithdrawalStatus(open.status, stepOf(e.type))!;
      // Paid through Stripe (fiat), the money leaves for Stripe's payouts account; paid on chain by
      // Coffer (src/integrations/evm/), for the chain payouts one; by a processor, for the withdrawals one.
      const to =
        e.type === "withdrawal.payout.complete" ? (isFiat(context.asset as Asset) ? SYSTEM_ACCOUNT.stripePayouts : SYSTEM_ACCOUNT.chainPayouts) : SYSTEM_ACCOUNT.withdrawals;
      return {
        type: "withdrawal.changed" as const,
        ...subject(context, e.at),
        withdrawalId: e.withdrawalId,
        amount: open.amount,
        status,
        ...("reason" in e && e.reason !== undefined ? { reason: e.reason } : {}),
        ...("journalId" in e ? { journal: withdrawalJournal(e, context.asset, context.walletId, to, open.amount) } : {}),
      };
    }),
    // A completed withdrawal turns its hold into a posting (money leaves); failed and cancelled
    // ones just drop the hold; processing keeps it.
    applyWithdrawalStep: assign(({ context, event }) => {
      const e = event as LifecycleEvent;
      const open = context.withdrawals[e.withdrawalId]!;
      const status = nextWithdrawalStatus(open.status, stepOf(e.type))!;
      if (status === "processing" || status === "manual_review" || status === "requested") {
        return { withdrawals: { ...context.withdrawals, [e.withdrawalId]: { ...open, status } } };
      }
      return {
        posted: status === "completed" ? context.posted - open.amount : context.posted,
        withdrawals: withoutKey(context.withdrawals, e.withdrawalId),
      };
    }),
    // A payout the bank sent back after Stripe paid it: the money returns (system:stripe_payouts →
    // wallet). The withdrawal ended already, so the wallet keeps no record of it: the step carries
    // the amount, and is keyed by the withdrawal (src/workers/payout-worker.ts) so it happens once.
    returnPayout: enqueueActions(({ context, event, enqueue }) => {
      const e = event as Ev<"withdrawal.payout.return">;
      enqueue.assign({ posted: context.posted + e.amount });
      enqueue.emit({
        type: "withdrawal.changed",
        ...subject(context, e.at),
        withdrawalId: e.withdrawalId,
        amount: e.amount,
        status: "returned",
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
        journal: move(e.journalId, "withdrawal_return", context.asset, SYSTEM_ACCOUNT.stripePayouts, context.walletId, e.amount),
      });
    }),
  },
  guards: {
    /** A chama pays a member only into that member's own wallet, whatever the request said. */
    notTheMembers: ({ context, event }) => event.type === "transfer.credit" && event.fromChamaId !== undefined && event.toMemberId !== context.ownerId,
    overMaximum: ({ context, event }) => "amount" in event && event.amount > STORABLE_CEILING(context.asset),
    covers: ({ context, event }) => "amount" in event && availableOf(context) >= event.amount,
    inDebt: ({ context }) => availableOf(context) < 0n,
    forced: ({ event }) => event.type === "deposit.refund.debit" && event.force,
    refundInDebt: ({ context, event }) => event.type === "deposit.refund.debit" && !event.force && availableOf(context) < 0n,
    refundUncovered: ({ context, event }) => event.type === "deposit.refund.debit" && !event.force && availableOf(context) < event.amount,
    sameAsset: ({ context, event }) => event.type === "transfer.credit" && event.asset === context.asset,
    isEmpty: ({ context }) =>
      context.posted === 0n && Object.keys(context.withdrawals).length === 0 && Object.keys(context.outgoing).length === 0,
    withdrawalAllows: ({ context, event }) => {
      if (!(event.type in LIFECYCLE_STEPS) || !("withdrawalId" in event)) return false;
      const open = context.withdrawals[event.withdrawalId];
      // A fee is kept from what is sent, so it must leave something to send.
      if (open && "feeMinor" in event && event.feeMinor !== undefined && event.feeMinor >= open.amount) return false;
      return open !== undefined && nextWithdrawalStatus(open.status, stepOf(event.type)) !== undefined;
    },
    isOutgoing: ({ context, event }) => "transferId" in event && context.outgoing[event.transferId] !== undefined,
  },
}).createMachine({
  id: "wallet",
  initial: "unopened",
  context: ({ input }) => ({ walletId: input.walletId, ownerId: "", asset: "", posted: 0n, withdrawals: {}, outgoing: {} }),
  states: {
    unopened: {
      on: {
        "wallet.open": {
          target: "active",
          actions: [
            assign(({ event }) => ({ walletId: event.walletId, ownerId: event.ownerId, asset: event.asset })),
            emit(({ event }) => ({ type: "wallet.opened", walletId: event.walletId, asset: event.asset, ownerId: event.ownerId, at: event.at })),
          ],
        },
        "*": { actions: reject("WALLET_NOT_FOUND", "wallet not found") },
      },
    },

    active: {
      on: {
        "wallet.open": { actions: reject("WALLET_EXISTS", "a wallet with this id already exists") },
        "wallet.credit": [
          overMaximum,
          {
          actions: [
            assign({ posted: ({ context, event }) => context.posted + event.amount }),
            emit(({ context, event }) => ({
              type: "wallet.credited",
              ...subject(context, event.at),
              journal: move(event.journalId, "credit", context.asset, SYSTEM_ACCOUNT.funding, context.walletId, event.amount, event.reference),
            })),
          ],
          },
        ],
        "wallet.payment": [
          overMaximum,
          inDebt,
          {
            guard: "covers",
            actions: [
              assign({ posted: ({ context, event }) => context.posted - event.amount }),
              emit(({ context, event }) => ({
                type: "wallet.paid",
                ...subject(context, event.at),
                journal: move(event.journalId, "payment", context.asset, context.walletId, SYSTEM_ACCOUNT.payments, event.amount, event.reference),
              })),
            ],
          },
          { actions: reject("INSUFFICIENT_FUNDS", "the available balance does not cover this amount") },
        ],
        "withdrawal.request": [
          overMaximum,
          inDebt,
          {
            guard: "covers",
            actions: [
              assign({
                withdrawals: ({ context, event }) => ({ ...context.withdrawals, [event.withdrawalId]: { amount: event.amount, status: "requested" } }),
              }),
              emit(({ context, event }) => ({
                type: "withdrawal.changed",
                ...subject(context, event.at),
                withdrawalId: event.withdrawalId,
                amount: event.amount,
                status: "requested",
                destination: event.destination,
              })),
            ],
          },
          { actions: reject("INSUFFICIENT_FUNDS", "the available balance does not cover this amount") },
        ],
        "transfer.reserve": [
          overMaximum,
          inDebt,
          {
            guard: "covers",
            actions: [
              assign(({ context, event }) => ({
                posted: context.posted - event.amount,
                outgoing: { ...context.outgoing, [event.transferId]: { amount: event.amount, ...receiverOf(event) } },
              })),
              emit(({ context, event }) => ({
                type: "transfer.reserved",
                ...subject(context, event.at),
                transferId: event.transferId,
                ...receiverOf(event),
                amount: event.amount,
                // A contribution to a chama is the wallet owner's: the chama credits it to them.
                ...(event.toChamaId !== undefined ? { memberId: context.ownerId } : {}),
                journal: move(event.journalId, "transfer_reserve", context.asset, context.walletId, SYSTEM_ACCOUNT.transit, event.amount),
              })),
            ],
          },
          { actions: reject("INSUFFICIENT_FUNDS", "the available balance does not cover this amount") },
        ],
        "transfer.credit": [
          overMaximum,
          { guard: "notTheMembers", actions: reject("WALLET_NOT_FOUND", "the receiving wallet is not the member's") },
          {
            guard: "sameAsset",
            actions: [
              assign({ posted: ({ context, event }) => context.posted + event.amount }),
              emit(({ context, event }) => ({
                type: "transfer.credited",
                ...subject(context, event.at),
                transferId: event.transferId,
                ...senderOf(event),
                amount: event.amount,
                journal: move(event.journalId, "transfer_credit", context.asset, SYSTEM_ACCOUNT.transit, context.walletId, event.amount),
              })),
            ],
          },
          { actions: reject("ASSET_MISMATCH", "the receiving wallet holds another asset") },
        ],
        "wallet.freeze": { target: "frozen", actions: emit(({ context, event }) => ({ type: "wallet.frozen", ...subject(context, event.at) })) },
        "wallet.close": [
          { guard: "isEmpty", target: "closed", actions: emit(({ context, event }) => ({ type: "wallet.closed", ...subject(context, event.at) })) },
          { actions: reject("WALLET_NOT_EMPTY", "only an empty wallet with nothing in flight can be closed") },
        ],
      },
    },

    frozen: {
      on: {
        "wallet.open": { actions: reject("WALLET_EXISTS", "a wallet with this id already exists") },
        "wallet.credit": { actions: reject("WALLET_FROZEN", "the wallet is frozen") },
        "wallet.payment": { actions: reject("WALLET_FROZEN", "the wallet is frozen") },
        "withdrawal.request": { actions: reject("WALLET_FROZEN", "the wallet is frozen") },
        "transfer.reserve": { actions: reject("WALLET_FROZEN", "the wallet is frozen") },
        // A refund asked for through Coffer is money leaving: not while frozen (the deposit cancels it).
        "deposit.refund.debit": [
          overMaximum,
          { guard: "forced", actions: card("deposit_refund_forced", SYSTEM_ACCOUNT.stripeClearing, -1, "deposit.refund.debited") },
          { actions: reject("WALLET_FROZEN", "the wallet is frozen") },
        ],
        "transfer.credit": { actions: reject("WALLET_FROZEN", "the receiving wallet is frozen") },
        "wallet.unfreeze": { target: "active", actions: emit(({ context, event }) => ({ type: "wallet.unfrozen", ...subject(context, event.at) })) },
        "wallet.close": [
          { guard: "isEmpty", target: "closed", actions: emit(({ context, event }) => ({ type: "wallet.closed", ...subject(context, event.at) })) },
          { actions: reject("WALLET_NOT_EMPTY", "only an empty wallet with nothing in flight can be closed") },
        ],
      },
    },

    closed: {
      on: {
        "wallet.open": { actions: reject("WALLET_EXISTS", "a wallet with this id already exists") },
        "wallet.close": { actions: reject("INVALID_TRANSITION", "the wallet is already closed") },
        "*": { actions: reject("WALLET_CLOSED", "the wallet is closed") },
      },
    },
  },

  // Money already promised keeps moving while a wallet is frozen: a payout in flight completes or
  // fails, and a transfer already reserved settles or is voided. These handlers apply in both states.
  on: {
    // Card money (Stripe deposits): the money of a deposit has arrived, and a dispute's is taken by
    // the card network whatever the wallet holds, so these are booked while frozen too. A dispute,
    // or a refund made at Stripe directly (`force`), may take more than is available: the
    // shortfall is the wallet's debt (available < 0), and nothing leaves until credits cover it.
    "deposit.credit": [overMaximum, { actions: card("deposit", SYSTEM_ACCOUNT.stripeClearing, 1, "deposit.credited") }],
    "deposit.refund.debit": [
      overMaximum,
      { guard: "forced", actions: card("deposit_refund_forced", SYSTEM_ACCOUNT.stripeClearing, -1, "deposit.refund.debited") },
      { guard: "refundInDebt", actions: reject("WALLET_IN_DEBT", "the wallet is in debt after a dispute: it cannot pay a refund back") },
      { guard: "refundUncovered", actions: reject("INSUFFICIENT_FUNDS", "the money of this deposit was spent: the available balance does not cover the refund") },
      { actions: card("deposit_refund", SYSTEM_ACCOUNT.stripeClearing, -1, "deposit.refund.debited") },
    ],
    "deposit.refund.return": [overMaximum, { actions: card("deposit_refund_return", SYSTEM_ACCOUNT.stripeClearing, 1, "deposit.refund.returned") }],
    "deposit.dispute.debit": [overMaximum, { actions: card("dispute", SYSTEM_ACCOUNT.stripeDisputes, -1, "deposit.dispute.debited") }],
    "deposit.dispute.return": [overMaximum, { actions: card("dispute_return", SYSTEM_ACCOUNT.stripeDisputes, 1, "deposit.dispute.returned") }],
    "withdrawal.process": withdrawalStep,
    "withdrawal.complete": withdrawalStep,
    "withdrawal.fail": withdrawalStep,
    "withdrawal.cancel": withdrawalStep,
    // Paid through Stripe: the same steps, taken by the payout worker only (actors/command-policy.ts).
    "withdrawal.payout.send": withdrawalStep,
    "withdrawal.payout.complete": withdrawalStep,
    "withdrawal.payout.fail": withdrawalStep,
    "withdrawal.payout.return": [overMaximum, { actions: "returnPayout" }],
    // Transaction monitoring's hold, and a platform admin's release or rejection of it.
    "withdrawal.hold": withdrawalStep,
    "withdrawal.release": withdrawalStep,
    "withdrawal.reject": withdrawalStep,
    "transfer.settle": [
      {
        guard: "isOutgoing",
        actions: [
          emit(({ context, event }) => ({
            type: "transfer.settled",
            ...subject(context, event.at),
            transferId: event.transferId,
            ...receiverOf(context.outgoing[event.transferId]!),
            amount: context.outgoing[event.transferId]!.amount,
          })),
          assign({ outgoing: ({ context, event }) => withoutKey(context.outgoing, event.transferId) }),
        ],
      },
      { actions: reject("INVALID_TRANSITION", "the transfer is not pending on this wallet") },
    ],
    "transfer.void": [
      {
        guard: "isOutgoing",
        actions: [
          emit(({ context, event }) => {
            const outgoing = context.outgoing[event.transferId]!;
            return {
              type: "transfer.voided",
              ...subject(context, event.at),
              transferId: event.transferId,
              ...receiverOf(outgoing),
              amount: outgoing.amount,
              reason: event.reason,
              journal: move(event.journalId, "transfer_void", context.asset, SYSTEM_ACCOUNT.transit, context.walletId, outgoing.amount),
            };
          }),
          assign(({ context, event }) => ({
            posted: context.posted + context.outgoing[event.transferId]!.amount,
            outgoing: withoutKey(context.outgoing, event.transferId),
          })),
        ],
      },
      { actions: reject("INVALID_TRANSITION", "the transfer is not pending on this wallet") },
    ],
  },
});

/** Each command that moves an open withdrawal, and the step of its life (machines/withdrawal.machine.ts) it takes. */
const LIFECYCLE_STEPS = {
  "withdrawal.process": "process",
  "withdrawal.complete": "complete",
  "withdrawal.fail": "fail",
  "withdrawal.cancel": "cancel",
  "withdrawal.payout.send": "process",
  "withdrawal.payout.complete": "complete",
  "withdrawal.payout.fail": "fail",
  "withdrawal.hold": "hold",
  "withdrawal.release": "release",
  "withdrawal.reject": "reject",
} as const satisfies Record<string, WithdrawalStep>;

type LifecycleType = keyof typeof LIFECYCLE_STEPS;
type LifecycleEvent = Ev<LifecycleType>;

function stepOf(type: string): WithdrawalStep {
  return LIFECYCLE_STEPS[type as LifecycleType];
}

/** The wallet machine refusing amounts above `ceiling` (the configured maximum) in every command that moves money. */
export function walletMachineWith(ceiling: AmountCeiling) {
  return walletMachine.provide({ guards: { overMaximum: ({ context, event }) => "amount" in event && event.amount > ceiling(context.asset) } });
}
