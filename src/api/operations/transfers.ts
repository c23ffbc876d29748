import { z } from "zod";
import { getTransfer } from "../queries";
import { ok, operation } from "../operation";
import { TransferView } from "../outputs";
import { CreateTransfer, Uuid } from "../schemas";

export const transferOperations = [
  operation({
    name: "transfers.create",
    method: "POST",
    path: "/v1/transfers",
    summary: "Move money from one wallet to another of the same asset (settles in the background)",
    input: CreateTransfer,
    output: TransferView,
    status: 201,
    action: "transfer.create",
    ownedBy: "wallet",
    tier: "money",
    idempotent: true,
    example: { fromWalletId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b", toWalletId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6c", amount: "5.00" },
    run: ({ caller, key, deps }, input) => deps.ops.createTransfer(caller, key, input),
  }),
  operation({
    name: "transfers.get",
    method: "GET",
    path: "/v1/transfers/:transferId",
    summary: "A transfer and its status (pending, settled or voided)",
    input: z.strictObject({ transferId: Uuid.describe("the transfer's id") }),
    output: TransferView,
    status: 200,
    action: "transfer.read",
    ownedBy: "transfer",
    tier: "standard",
    idempotent: false,
    example: { transferId: "0193a2b4-7e8f-7091-9a2b-3c4d5e6f7a8b" },
    run: ({ caller, deps }, input) => ok(getTransfer(deps.db, caller.principal, input.transferId)),
  }),
];
