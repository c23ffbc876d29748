import { describe, expect, test } from "bun:test";
import { SYSTEM_ACCOUNT } from "../../machines/journal";
import { availableOf } from "../../machines/wallet.machine";
import { activeWallet, expectMove, expectRejected, run, step, WALLET } from "./drive";

/**
 * The wallet's side of card money (machines/wallet.machine.ts): what the deposit saga books, and
 * the debt a dispute can leave. No actor, no Stripe.
 */
const D = "0193a2b4-8f90-7a1b-9c2d-3e4f5a6b7c8d";

describe("card money in a wallet", () => {
  test("a deposit is credited from Stripe's clearing account", () => {
    const { next, effects } = step(activeWallet(), { type: "deposit.credit", depositId: D, journalId: "j-1", amount: 1_234n });
    expect(next.context.posted).toBe(1_234n);
    expectMove((effects[0] as { journal?: never }).journal, SYSTEM_ACCOUNT.stripeClearing, WALLET, 1_234n);
  });

  test("a refund asked through Coffer comes from the available balance only", () => {
    expectRejected(activeWallet(500n), { type: "deposit.refund.debit", depositId: D, refundId: "r-1", journalId: "j-2", amount: 501n, force: false }, "INSUFFICIENT_FUNDS");
    const { next } = step(activeWallet(500n), { type: "deposit.refund.debit", depositId: D, refundId: "r-1", journalId: "j-2", amount: 500n, force: false });
    expect(next.context.posted).toBe(0n);
  });

  test("a dispute after the money was spent leaves a debt; nothing leaves the wallet until credits pay it", () => {
    const spent = run(activeWallet(1_000n), { type: "wallet.payment", journalId: "j-pay", amount: 800n });
    const { next: inDebt, effects } = step(spent, { type: "deposit.dispute.debit", depositId: D, disputeId: "du_1", journalId: "j-d", amount: 1_000n });
    expectMove((effects[0] as { journal?: never }).journal, WALLET, SYSTEM_ACCOUNT.stripeDisputes, 1_000n);
    expect(availableOf(inDebt.context)).toBe(-800n);
    expectRejected(inDebt, { type: "wallet.payment", journalId: "j-p2", amount: 1n }, "WALLET_IN_DEBT");
    expectRejected(inDebt, { type: "withdrawal.request", withdrawalId: "w-1", amount: 1n, destination: { masked: {}, sealed: { kid: "k", iv: "i", ct: "c", tag: "t" } } }, "WALLET_IN_DEBT");
    expectRejected(inDebt, { type: "transfer.reserve", transferId: "t-1", journalId: "j-t", toWalletId: "w-2", amount: 1n }, "WALLET_IN_DEBT");
    expectRejected(inDebt, { type: "deposit.refund.debit", depositId: D, refundId: "r-1", journalId: "j-r", amount: 1n, force: false }, "WALLET_IN_DEBT");
    const paidBack = run(inDebt, { type: "wallet.credit", journalId: "j-c", amount: 1_000n });
    expect(availableOf(paidBack.context)).toBe(200n);
    expect(step(paidBack, { type: "wallet.payment", journalId: "j-p3", amount: 200n }).effects[0]!.type).toBe("wallet.paid");
  });

  test("a won dispute returns the money", () => {
    const disputed = run(activeWallet(1_000n), { type: "deposit.dispute.debit", depositId: D, disputeId: "du_1", journalId: "j-d", amount: 1_000n });
    const { next, effects } = step(disputed, { type: "deposit.dispute.return", depositId: D, disputeId: "du_1", journalId: "j-w", amount: 1_000n });
    expect(next.context.posted).toBe(1_000n);
    expectMove((effects[0] as { journal?: never }).journal, SYSTEM_ACCOUNT.stripeDisputes, WALLET, 1_000n);
  });

  test("a frozen wallet still takes a deposit's money and a dispute, but pays no refund asked through Coffer", () => {
    const frozen = run(activeWallet(1_000n), { type: "wallet.freeze" });
    expect(step(frozen, { type: "deposit.credit", depositId: D, journalId: "j-1", amount: 10n }).next.context.posted).toBe(1_010n);
    expect(step(frozen, { type: "deposit.dispute.debit", depositId: D, disputeId: "du_1", journalId: "j-2", amount: 10n }).next.context.posted).toBe(990n);
    expectRejected(frozen, { type: "deposit.refund.debit", depositId: D, refundId: "r-1", journalId: "j-3", amount: 10n, force: false }, "WALLET_FROZEN");
    expect(step(frozen, { type: "deposit.refund.debit", depositId: D, refundId: "r-1", journalId: "j-3", amount: 10n, force: true }).next.context.posted).toBe(990n);
  });

  test("a wallet in debt cannot be closed", () => {
    const inDebt = run(activeWallet(), { type: "deposit.dispute.debit", depositId: D, disputeId: "du_1", journalId: "j-d", amount: 5n });
    expectRejected(inDebt, { type: "wallet.close" }, "WALLET_NOT_EMPTY");
  });
});
