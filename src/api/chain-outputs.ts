import { z } from "zod";
import { ASSETS } from "../../lib/assets";

/**
 * What the chain payout operator routes answer with (src/api/operations/chain.ts), in the manner of
 * outputs.ts; built by src/integrations/chain/operator.ts. Amounts are decimal strings in the asset
 * named beside them; a destination is masked as withdrawals show it; no raw transaction, key or full
 * destination address is ever in an answer. Worker-written text (errors, reasons, drift) is redacted.
 */
const Id = z.uuid();
const Time = z.iso.datetime({ offset: true }).describe("an ISO-8601 time");
const Asset = z.enum(ASSETS as [string, ...string[]]);
const NextCursor = z.string().nullable().describe("pass it as `cursor` for the next page; null on the last page");
const Money = z
  .string()
  .regex(/^-?[0-9]+(\.[0-9]+)?$/)
  .meta({ description: "a decimal amount in the asset's major unit, exact (\"12.34\")", examples: ["12.34"] });

/** Every status a chain payout row takes (migration 017). */
export const CHAIN_PAYOUT_STATUSES = ["claimed", "signed", "broadcast", "confirmed", "completed", "failed", "parked", "dropped", "cancelling", "cancelled"] as const;
/** The statuses that are a queue: work the pipeline (or an operator) still has to do. */
export const QUEUE_STATUSES = ["claimed", "signed", "broadcast", "confirmed", "cancelling", "parked"] as const;
export const DEAD_LETTER_STATUSES = ["open", "redriven", "deleted"] as const;

const PayoutStatus = z.enum(CHAIN_PAYOUT_STATUSES);
const Count = z.number().int().min(0);

export const ChainNetworkView = z.object({
  name: z.string().describe("the network's name in NETWORKS_FILE"),
  kind: z.enum(["evm", "solana"]),
  asset: Asset.describe("the network's native asset: what the hot wallet's balance, the pending outflow, the fee margin and the runway are in"),
  paused: z.boolean().describe("payouts on this network wait (nothing fails) while it is paused"),
  pausedBy: z.enum(["operator", "runway"]).nullable().describe("an operator, or the runway check (the hot wallet could not cover what is pending)"),
  pausedReason: z.string().nullable(),
  pausedAt: Time.nullable(),
  hotWallet: z.string().nullable().describe("the hot wallet's address (public: where to top it up); null until a key is imported"),
  balance: Money.nullable().describe("the hot wallet's balance as the worker last read it; null until it has"),
  balanceAt: Time.nullable().describe("when the worker read that balance"),
  pendingOutflow: Money.describe("what payouts of the native asset that are claimed, signed, broadcast, confirmed or cancelling will take out"),
  feeMargin: Money.describe("kept free for fees (NETWORKS_FILE runway.feeMarginWei or feeMarginLamports)"),
  runway: Money.nullable().describe("balance − pending outflow − fee margin (negative when short); null while the balance is unknown"),
  queue: z
    .object({ claimed: Count, signed: Count, broadcast: Count, confirmed: Count, cancelling: Count, parked: Count })
    .describe("payouts on this network per status still in the pipeline (any asset)"),
  deadLetters: z.number().int().describe("open dead letters on this network"),
  oldestPendingAgeSeconds: z.number().int().nullable().describe("how long the oldest claimed, signed, broadcast, confirmed or cancelling payout has waited; null when none does"),
  lastBlock: z.number().int().nullable().describe("the newest block (slot) the worker saw"),
  lastBlockAt: Time.nullable(),
  chainNonce: z.number().int().nullable().describe("the hot wallet's confirmed nonce on the chain when last checked (EVM)"),
  drift: z.string().nullable().describe("a gap between the chain's nonce and the pipeline's found then, if any"),
});
export const ChainNetworkList = z.object({ items: z.array(ChainNetworkView) }).describe("every network of NETWORKS_FILE, by name");

export const ChainPayoutView = z.object({
  withdrawalId: Id,
  walletId: Id,
  network: z.string(),
  asset: Asset,
  amount: Money,
  destination: z
    .object({ type: z.literal("crypto"), network: z.string(), address: z.string().optional().describe("the first six and last four characters only") })
    .nullable()
    .describe("where it goes, masked as the withdrawal shows it"),
  status: PayoutStatus,
  parkedFrom: PayoutStatus.nullable().describe("a parked payout: the status it left (retry puts it back there)"),
  lastError: z.string().nullable().describe("why it was parked or last failed (redacted)"),
  nonce: z.number().int().nullable(),
  txHash: z.string().nullable().describe("the newest transaction signed for it (public)"),
  attempts: z.number().int().describe("transactions signed for its nonce (the payout, its replacements, a cancellation)"),
  replacements: z.number().int(),
  operatorAction: z.enum(["retry", "cancel", "replace"]).nullable().describe("an operator's request the worker has not carried out yet"),
  operatorActionBy: z.string().nullable(),
  blockNumber: z.number().int().nullable().describe("the block its transaction was mined in"),
  createdAt: Time,
  updatedAt: Time,
});
export const ChainPayoutPage = z.object({ items: z.array(ChainPayoutView), nextCursor: NextCursor }).describe("chain payouts, newest first");

export const ChainDeadLetterView = z.object({
  id: Id,
  withdrawalId: Id,
  network: z.string(),
  stage: z.string().describe("the pipeline stage that gave up (sign, broadcast, track, …)"),
  reason: z.string().describe("why (redacted)"),
  attempts: z.number().int(),
  status: z.enum(DEAD_LETTER_STATUSES),
  payoutStatus: PayoutStatus.nullable().describe("the payout's status now"),
  settledBy: z.string().nullable().describe("who re-drove or deleted it"),
  settledAt: Time.nullable(),
  createdAt: Time,
});
export const ChainDeadLetterPage = z.object({ items: z.array(ChainDeadLetterView), nextCursor: NextCursor }).describe("dead letters, newest first");
