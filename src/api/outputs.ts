import { z } from "zod";
import { ASSETS } from "../../lib/assets";
import { ERROR_STATUS, type ErrorCode } from "../../lib/errors";
import { PERMISSIONS } from "../../lib/principal";

/**
 * What operations answer with, as zod schemas: the OpenAPI document and the typed client are made
 * from these, and test/api/outputs.test.ts checks a real answer of every operation against them.
 *
 * They describe what views.ts, chama-views.ts, the reads (queries.ts, chama-queries.ts) and the
 * admin handlers build. Objects are plain `z.object`s: a client parsing an answer keeps the fields
 * named here and tolerates one added later, while the document says exactly what is sent today.
 * Optional fields are left out of a body, never sent as null, unless the schema says `nullable`.
 *
 * One resource, one schema: every operation that answers with a wallet, a withdrawal, a transfer, a
 * chama, a member or a chama withdrawal (its create, its steps, its read, the items of its list)
 * declares that resource's schema, and test/api/shapes.test.ts checks that each answers with the
 * fields a read of the same object shows.
 */

// Building blocks.
export const Money = z
  .string()
  .regex(/^-?[0-9]+(\.[0-9]+)?$/)
  .meta({ description: "a decimal amount in the asset's major unit, exact (\"12.34\")", examples: ["12.34"] });
const Id = z.uuid();
const Time = z.iso.datetime({ offset: true }).describe("an ISO-8601 time");
const Asset = z.enum(ASSETS as [string, ...string[]]);
const NextCursor = z.string().nullable().describe("pass it as `cursor` for the next page; null on the last page");
const Balance = z.object({ posted: Money, held: Money, available: Money }).describe("available = posted − held (held: open withdrawals)");
/** A wallet's balance: a chama's, with the debt a card dispute can leave behind. */
const WalletBalance = z
  .object({
    posted: Money,
    held: Money,
    available: Money.describe("what may be spent: posted − held, or 0 while the wallet is in debt"),
    debt: Money.optional().describe("only while the wallet is in debt: what a card dispute took beyond what it held; credits pay it first, and nothing leaves the wallet until it is paid"),
  })
  .describe("available − debt = posted − held (held: open withdrawals; debt 0 when absent)");
const AvailableAfter = z.object({ available: Money }).describe("what is available once this movement is booked");

/** A bank number masked: at most its last four characters, none of a value of eight characters or fewer. */
const MaskedNumber = z
  .string()
  .regex(/^\*{4}([A-Za-z0-9]{4})?$/)
  .meta({ description: "the last four characters at most; nothing of a short value (\"****3000\", \"****\")", examples: ["****3000"] });

/** A payout destination as callers see it: masked, never whole. */
export const MaskedDestination = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("bank"), account: MaskedNumber }).describe("an IBAN"),
    z.object({ type: z.literal("us_bank"), account: MaskedNumber }).describe("a US bank account (the routing number is not shown)"),
    z.object({ type: z.literal("ke_bank"), account: MaskedNumber }).describe("a Kenyan bank account (the bank code is not shown)"),
    z.object({ type: z.literal("bank_token"), token: MaskedNumber }).describe("a bank account held by the payment provider"),
    z.object({ type: z.literal("stripe_account"), account: MaskedNumber }).describe("a Stripe connected account (paid by a Connect transfer)"),
    z
      .object({
        type: z.literal("crypto"),
        network: z.string(),
        address: z.string().optional().describe("the first six and last four characters only; absent for a Lightning invoice, of which nothing is shown"),
        amount: Money.optional().describe("lightning only: what the invoice pays (the withdrawal's amount)"),
      })
      .describe("an address on a blockchain, or a Lightning invoice (shown as its network and amount)"),
    z.object({ type: z.literal("wallet"), walletId: Id.describe("the requester's own wallet") }).describe("a chama withdrawal paid into a member's wallet"),
    z.object({ type: z.literal("unknown") }),
  ])
  .describe("where the money goes, masked");

// Wallets.
export const WalletView = z.object({
  id: Id,
  ownerId: z.string(),
  asset: Asset,
  status: z.enum(["active", "frozen", "closed"]),
  balance: WalletBalance,
  version: z.number().int().describe("the wallet's version: it grows with every change (an answer to a change shows the version it made)"),
});

const JOURNAL_KINDS = ["deposit", "deposit_refund", "deposit_refund_forced", "deposit_refund_return", "dispute", "dispute_return", "credit", "payment", "withdrawal", "withdrawal_return", "transfer_reserve", "transfer_credit", "transfer_void", "chama_deposit", "chama_withdrawal", "chama_contribution", "chama_withdrawal_void", "network_fee"] as const;

/** A credit's or a payment's answer: the journal it booked, and the wallet's available balance after it. */
export const JournalView = z.object({
  id: Id.describe("the journal's id"),
  walletId: Id,
  kind: z.enum(["credit", "payment"]),
  asset: Asset,
  amount: Money,
  reference: z.string().optional(),
  balance: AvailableAfter,
  createdAt: Time,
});

export const TransactionView = z.object({
  id: Id.describe("the journal's id"),
  kind: z.enum(JOURNAL_KINDS).describe("the journal's kind: which movement of its source this is"),
  source: z
    .object({
      kind: z.enum(["credit", "payment", "deposit", "transfer", "withdrawal"]),
      id: Id.describe("the id its caller was answered with: a credit's or payment's (its journal's), a transfer's, a withdrawal's"),
    })
    .describe("what this posting belongs to: read it with the matching GET (transfers, withdrawals)"),
  amount: Money.describe("signed: positive into the wallet, negative out of it"),
  balanceAfter: Money.describe("the wallet's posted balance right after this posting"),
  reference: z.string().optional(),
  createdAt: Time,
});
export const TransactionPage = z.object({ items: z.array(TransactionView), nextCursor: NextCursor });

export const WithdrawalView = z.object({
  id: Id,
  walletId: Id,
  asset: Asset,
  amount: Money,
  status: z
    .enum(["requested", "processing", "completed", "failed", "cancelled", "returned", "manual_review", "rejected"])
    .describe("requested (held) → processing (sent) → completed (paid out); or failed / cancelled (released); returned: paid, then sent back by the bank (the money is in the wallet again); manual_review: held by transaction monitoring until a platform admin releases it (back to requested) or rejects it (rejected: the hold is released)"),
  destination: MaskedDestination,
  reason: z.string().optional().describe("why it failed, was cancelled or was returned, when a reason was given"),
  createdAt: Time,
  updatedAt: Time,
});

export const TransferView = z.object({
  id: Id,
  fromWalletId: Id,
  toWalletId: Id,
  asset: Asset,
  amount: Money,
  status: z.enum(["pending", "settled", "voided"]),
  reason: z.string().optional().describe("why a transfer was voided"),
  createdAt: Time,
  updatedAt: Time,
});

// Chamas.
export const ChamaRulesView = z.object({
  approvalsRequired: z.number().int(),
  rejectionsToReject: z.number().int(),
  maxPerWithdrawal: Money.nullable(),
  maxPerDay: Money.nullable(),
  maxWithdrawalsPerWindow: z.number().int().nullable(),
  windowMs: z.number().int(),
  requestLifetimeMs: z.number().int(),
});

export const ChamaView = z.object({
  id: Id,
  name: z.string(),
  asset: Asset,
  status: z.enum(["active", "frozen", "closed"]),
  createdBy: z.string().describe("the founding admin's member id"),
  balance: Balance,
  rules: ChamaRulesView,
  members: z.number().int().describe("how many members it has"),
});

export const MemberView = z.object({
  chamaId: Id,
  memberId: z.string(),
  role: z.enum(["admin", "member"]).nullable().describe("null once removed or revoked"),
  status: z.enum(["invited", "member", "former", "revoked"]),
  contributed: Money,
  withdrawn: Money,
  share: z
    .string()
    .regex(/^[0-9]+\.[0-9]{4}$/)
    .meta({ description: "their part of what the current members contributed (\"0.2500\")", examples: ["0.2500"] }),
});
export const MemberList = z.object({ items: z.array(MemberView) });

/** A deposit's answer: the journal, the member's total contribution and the chama's available balance after it. */
export const ChamaDepositView = z.object({
  id: Id.describe("the journal's id"),
  chamaId: Id,
  memberId: z.string(),
  asset: Asset,
  amount: Money,
  contributed: Money.describe("the member's contributions so far"),
  reference: z.string().optional(),
  balance: AvailableAfter,
  createdAt: Time,
});

const CHAMA_WITHDRAWAL_STATUSES = ["pending_approval", "manual_review", "approved", "processing", "completed", "failed", "rejected", "expired", "cancelled"] as const;

export const ChamaWithdrawalView = z.object({
  id: Id,
  chamaId: Id,
  memberId: z.string().describe("who asked"),
  asset: Asset,
  amount: Money,
  status: z.enum(CHAMA_WITHDRAWAL_STATUSES),
  approvals: z.array(z.string()).describe("admins who approved"),
  rejections: z.array(z.string()).describe("admins who rejected"),
  destination: MaskedDestination,
  reason: z.string().optional().describe("why it failed or was cancelled, when a reason was given"),
  expiresAt: Time.describe("after it, an unapproved request expires"),
  createdAt: Time,
  updatedAt: Time,
});

export const ChamaReviewView = z.object({
  reviewerId: z.string(),
  decision: z.enum(["approve", "reject"]),
  note: z.string().optional(),
  status: z.enum(CHAMA_WITHDRAWAL_STATUSES).describe("the withdrawal's status after this review"),
  at: Time,
});

/** A withdrawal's reviews, oldest first, each with its note. */
export const ChamaReviewList = z.object({ items: z.array(ChamaReviewView) });
export const ChamaWithdrawalPage = z.object({ items: z.array(ChamaWithdrawalView), nextCursor: NextCursor });

/** Any chama command's answer: the chama, a member, a deposit or a withdrawal, depending on the command. */
export const ChamaChange = z.union([ChamaView, MemberView, ChamaDepositView, ChamaWithdrawalView]);

const AuditValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);
export const AuditEntry = z.object({
  seq: z.string().regex(/^[0-9]+$/).describe("the entry's position in the chama's log"),
  actor: z.string().describe("who acted: a member id, `<role>#<sub>` for a platform credential, or `system`"),
  action: z.string().describe("the command's type (`chama.member.add`, `chama.withdrawal.review`, …)"),
  target: z.string().optional().describe("the member or withdrawal acted on"),
  before: z.record(z.string(), AuditValue).optional(),
  after: z.record(z.string(), AuditValue).optional(),
  note: z.string().optional(),
  via: z.string().optional().describe("the platform credential that reported it, when the actor is not who acted"),
  at: Time,
});
export const AuditPage = z.object({ items: z.array(AuditEntry), nextCursor: NextCursor });

// API keys.
export const ApiKeyView = z.object({
  id: Id,
  prefix: z.string().regex(/^cof_/).describe("the key's public part; the secret is never shown again"),
  name: z.string(),
  subject: z.string(),
  permissions: z.array(z.enum(PERMISSIONS)),
  rateLimitPerMinute: z.number().int().nullable(),
  ipAllowlist: z.array(z.string()).nullable(),
  expiresAt: Time.nullable(),
  revokedAt: Time.nullable(),
  lastUsedAt: Time.nullable(),
  createdAt: Time,
  createdBy: z.string(),
});
export const ApiKeyWithSecret = ApiKeyView.extend({ key: z.string().regex(/^cof_/).describe("the full key: shown in this answer only") });
export const ApiKeyList = z.object({ items: z.array(ApiKeyView) });

// Operators.
const NodeStatus = z.object({
  nodeId: z.string(),
  shards: z.array(z.number().int()),
  singletons: z.array(z.string()).describe("the background jobs this node runs for the whole cluster (src/workers/ownership.ts)"),
  leaseAgesMs: z.record(z.string(), z.number()).describe("by shard"),
  actorsLoaded: z.number().int(),
  mailboxDepth: z.number().int(),
  liveNodes: z.array(z.string()),
  healthy: z.boolean(),
  busDropped: z.record(z.string(), z.number().int()).describe("bus messages dropped since start, by reason"),
  publicUrl: z.string().optional().describe("where callers reach this node directly (PUBLIC_URL), named in Coffer-Owner hints"),
  forwarded: z
    .object({ batches: z.number().int(), batchedCommands: z.number().int(), singles: z.number().int(), local: z.number().int() })
    .optional()
    .describe("commands this node routed since start: NATS messages carrying several (and how many commands in them), single-command messages, and commands run here without NATS"),
});
const UnreachableNode = z.object({ nodeId: z.string(), unreachable: z.literal(true) });

export const ClusterView = z.discriminatedUnion("mode", [
  z.object({
    mode: z.literal("single").describe("one node without NATS"),
    nodes: z.array(z.object({ nodeId: z.string(), actorsLoaded: z.number().int(), mailboxDepth: z.number().int() })),
  }),
  z.object({
    mode: z.literal("cluster"),
    shardCount: z.number().int(),
    leaseTtlMs: z.number().int(),
    answeredBy: z.string(),
    nodes: z.array(z.union([NodeStatus, UnreachableNode])),
  }),
]);

export const VerifyReport = z.object({
  ok: z.boolean(),
  mismatches: z.array(
    z.object({
      kind: z.enum(["journal_unbalanced", "posting_orphan", "movement_stray", "posted_differs", "held_differs", "negative_available", "asset_differs"]),
      journalId: z.string().optional(),
      walletId: z.string().optional().describe("a wallet's or a chama's id"),
      asset: z.string().optional(),
      expected: z.string().optional(),
      actual: z.string().optional(),
    }),
  ),
});

const STRIPE_COUNTS = z.object({ paymentIntents: z.number().int(), refunds: z.number().int(), disputes: z.number().int(), payouts: z.number().int(), transfers: z.number().int() });
export const ReconciliationReport = z.object({
  ok: z.boolean().describe("true when Stripe and the ledger agree on everything compared"),
  differences: z.array(
    z.object({
      kind: z.enum(["missing_in_coffer", "missing_at_stripe", "amount_differs", "status_differs", "ledger_differs"]),
      object: z.enum(["payment_intent", "refund", "dispute", "payout", "transfer", "account"]),
      stripeId: z.string().optional(),
      cofferId: z.string().optional().describe("the deposit, refund or withdrawal id in Coffer (for `account`: the system account)"),
      field: z.string().optional(),
      asset: z.string().optional(),
      stripe: z.string().optional().describe("what Stripe says (amounts as decimals of `asset`)"),
      coffer: z.string().optional().describe("what Coffer says"),
      detail: z.string(),
    }),
  ).describe("at most 1,000 listed; summary.differences counts them all"),
  summary: z.object({
    since: z.string().nullable(),
    stripe: STRIPE_COUNTS.describe("Coffer's objects Stripe reported, by kind"),
    coffer: z.object({ deposits: z.number().int(), refunds: z.number().int(), disputes: z.number().int(), withdrawals: z.number().int() }),
    inFlight: z.number().int().describe("objects left out because a step of theirs is still in flight"),
    differences: z.number().int(),
    truncated: z.boolean().describe("a list stopped at its bound: some objects were not compared"),
    totalsChecked: z.boolean().describe("whether the system accounts' totals were compared (only without `since`)"),
    elapsedMs: z.number().int(),
  }),
});

export const ActorState = z.object({
  walletId: Id.describe("the wallet's or chama's id asked about"),
  loaded: z.boolean().describe("whether its actor is in memory on the node that answered"),
  state: z.union([z.string(), z.record(z.string(), z.unknown()), z.null()]).describe("the machine's state value; null when not loaded"),
  context: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe("the machine's context, every amount twice: `<name>Minor` in the asset's smallest unit (\"1250\") and `<name>` as a decimal (\"12.50\"); null when not loaded"),
  version: z.number().int().nullable(),
  mailboxDepth: z.number().int(),
  running: z.boolean(),
});

/** Every failure's body (RFC 9457 problem details with our stable `code`), as lib/errors.ts `problem()` builds it. */
export const Problem = z
  .looseObject({
    type: z.string().describe("a URI naming the kind of problem"),
    title: z.string(),
    status: z.number().int().describe("the HTTP status"),
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]).describe("the stable error code: decide on this"),
    detail: z.string().describe("a sentence for people; never contains secrets"),
    instance: z.string().optional().describe("the request path"),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe("VALIDATION_FAILED: each field that is wrong"),
    retryAfter: z.number().int().optional().describe("RATE_LIMITED: seconds to wait (also in the Retry-After header)"),
  })
  .describe("RFC 9457 problem details");

// Finding your things, and transfers between wallets and chamas.
export const WalletPage = z.object({ items: z.array(WalletView), nextCursor: NextCursor }).describe("wallets, newest first");

export const ChamaListItem = z.object({
  id: Id,
  name: z.string(),
  asset: Asset,
  status: z.enum(["active", "frozen", "closed"]),
  createdAt: Time,
  member: z
    .object({
      memberId: z.string(),
      role: z.enum(["admin", "member"]).nullable().describe("null for a former member"),
      status: z.enum(["member", "invited", "former"]),
    })
    .optional()
    .describe("where the member listed stands in it (absent when a platform reader lists every chama)"),
});
export const ChamaPage = z.object({ items: z.array(ChamaListItem), nextCursor: NextCursor }).describe("chamas, newest first");

/** A member's contribution from their wallet: a transfer whose receiver is the chama. */
export const ContributionView = z.object({
  id: Id.describe("the transfer's id"),
  chamaId: Id,
  fromWalletId: Id,
  memberId: z.string().describe("the wallet's owner: whom the chama credits it to"),
  asset: Asset,
  amount: Money,
  status: z.enum(["pending", "settled", "voided"]).describe("pending when accepted; settled once the chama took it, voided (money back) if it refused"),
  reason: z.string().optional().describe("why it was voided"),
  createdAt: Time,
  updatedAt: Time,
});

// Webhooks out: named here so the OpenAPI document lists them as components (src/api/webhook-outputs.ts).
export { WebhookDeliveryPage, WebhookDeliveryView, WebhookEndpointPage, WebhookEndpointView, WebhookEndpointWithSecret } from "./webhook-outputs";

// Chain payouts, for operators: named here so the OpenAPI document lists them as components (src/api/chain-outputs.ts).
export { ChainDeadLetterPage, ChainDeadLetterView, ChainNetworkList, ChainNetworkView, ChainPayoutPage, ChainPayoutView } from "./chain-outputs";
