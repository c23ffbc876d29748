import { z } from "zod";
import { AmountText } from "./schemas";

/** Card deposit inputs (src/api/operations/deposits.ts), strict like every input (schemas.ts). */
export const CreateDeposit = z.strictObject({ amount: AmountText });

/** No amount: refund all that is left of the deposit. */
export const CreateRefund = z.strictObject({ amount: AmountText.optional() });
