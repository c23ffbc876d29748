import { z } from "zod";
import { getWithdrawal } from "../queries";
import { ok, operation } from "../operation";
import { WithdrawalView } from "../outputs";
import { RequestWithdrawal, Uuid, WithdrawalStepBody } from "../schemas";

const withdrawalId = Uuid.describe("the withdrawal's id");
const EXAMPLE_WITHDRAWAL = "0193a2b4-6d7e-7f80-9a1b-2c3d4e5f6a7b";
const { reason } = WithdrawalStepBody.unwrap().shape;

/** Steps processors take until the payout pipelines drive them: process, then complete or fail; or cancel. */
const STEPS = {
  process: { summary: "Start paying out (the hold stays)", action: "withdrawal.process" },
  complete: { summary: "The payout arrived: the held money leaves the wallet", action: "withdrawal.process" },
  fail: { summary: "The payout failed: the hold is released", action: "withdrawal.process" },
  cancel: { summary: "Cancel a withdrawal not yet processing: the hold is released", action: "withdrawal.cancel" },
} as const;

export const withdrawalOperations = [
  operation({
    name: "wallets.withdrawals.create",
    method: "POST",
    path: "/v1/wallets/:walletId/withdrawals",
    summary: "Ask to pay money out to a bank account or an address; the amount is held until it ends",
    input: RequestWithdrawal.extend({ walletId: Uuid.describe("the wallet's id") }),
    output: WithdrawalView,
    status: 201,
    action: "withdrawal.request",
    ownedBy: "wallet",
    tier: "money",
    idempotent: true,
    example: { walletId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b", amount: "25.00", destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } },
    run: ({ caller, key, deps }, { walletId, ...input }) => deps.ops.requestWithdrawal(caller, key, walletId, input),
  }),
  operation({
    name: "withdrawals.get",
    method: "GET",
    path: "/v1/withdrawals/:withdrawalId",
    summary: "A withdrawal and its status (the destination masked)",
    input: z.strictObject({ withdrawalId }),
    output: WithdrawalView,
    status: 200,
    action: "withdrawal.read",
    ownedBy: "withdrawal",
    tier: "standard",
    idempotent: false,
    example: { withdrawalId: EXAMPLE_WITHDRAWAL },
    run: ({ caller, deps }, input) => ok(getWithdrawal(deps.db, caller.principal, input.withdrawalId)),
  }),
  ...(Object.keys(STEPS) as (keyof typeof STEPS)[]).map((step) =>
    operation({
      name: `withdrawals.${step}`,
      method: "POST",
      path: `/v1/withdrawals/:withdrawalId/${step}`,
      summary: STEPS[step].summary,
      input: z.strictObject({ withdrawalId, reason }),
      output: WithdrawalView,
      status: 200,
      action: STEPS[step].action,
      ownedBy: "withdrawal",
      tier: "standard",
      idempotent: true,
      example: { withdrawalId: EXAMPLE_WITHDRAWAL },
      run: ({ caller, key, deps }, input) => deps.ops.stepWithdrawal(caller, key, input.withdrawalId, step, input.reason),
    }),
  ),
];
