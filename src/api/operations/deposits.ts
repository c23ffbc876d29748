import { z } from "zod";
import { CreateDeposit, CreateRefund } from "../deposit-schemas";
import { DepositCreated, DepositRefundView, DepositView } from "../deposit-outputs";
import { ok, operation } from "../operation";
import { Uuid } from "../schemas";

const walletId = Uuid.describe("the wallet's id");
const depositId = Uuid.describe("the deposit's id");
const EXAMPLE_WALLET = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const EXAMPLE_DEPOSIT = "0193a2b4-8f90-7a1b-9c2d-3e4f5a6b7c8d";

/**
 * Card money in (and back out) through Stripe. The webhook Stripe calls is not in this table: it
 * has no credential (Stripe's signature proves it instead) and reads its body raw, so it is its
 * own route (src/http/stripe-webhook.ts), public like /health.
 */
export const depositOperations = [
  operation({
    name: "wallets.deposits.create",
    method: "POST",
    path: "/v1/wallets/:walletId/deposits",
    summary: "Pay into the wallet by card: a Stripe PaymentIntent for the amount; the wallet is credited once Stripe says the money arrived",
    input: CreateDeposit.extend({ walletId }),
    output: DepositCreated,
    status: 201,
    action: "deposit.create",
    ownedBy: "wallet",
    tier: "standard",
    idempotent: true,
    example: { walletId: EXAMPLE_WALLET, amount: "25.00" },
    run: ({ caller, key, deps }, { walletId, ...input }) => deps.deposits.create(caller, key, walletId, input),
  }),
  operation({
    name: "deposits.get",
    method: "GET",
    path: "/v1/deposits/:depositId",
    summary: "A card deposit: its status, what was received, refunded and disputed, its refunds and disputes",
    input: z.strictObject({ depositId }),
    output: DepositView,
    status: 200,
    action: "deposit.read",
    ownedBy: "deposit",
    tier: "standard",
    idempotent: false,
    example: { depositId: EXAMPLE_DEPOSIT },
    run: ({ caller, deps }, input) => ok(deps.deposits.get(caller, input.depositId)),
  }),
  operation({
    name: "deposits.refunds.create",
    method: "POST",
    path: "/v1/deposits/:depositId/refunds",
    summary: "Give a card deposit's money back (all that is left when no amount is given): paid from the wallet's available balance, then refunded by Stripe",
    input: CreateRefund.extend({ depositId }),
    output: DepositRefundView,
    status: 201,
    action: "deposit.refund",
    ownedBy: "deposit",
    tier: "money",
    idempotent: true,
    example: { depositId: EXAMPLE_DEPOSIT, amount: "5.00" },
    run: ({ caller, key, deps }, { depositId, ...input }) => deps.deposits.refund(caller, key, depositId, input),
  }),
];
