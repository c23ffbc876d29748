import Stripe from "stripe";
import { z } from "zod";
import { verifyLedger } from "../../ledger/verify";
import { reconcile } from "../../ledger/reconcile";
import { CofferError } from "../../../lib/errors";
import { stripeProblem } from "../../integrations/stripe/client";
import { ok, operation } from "../operation";
import { ActorState, ClusterView, ReconciliationReport, VerifyReport } from "../outputs";
import { Uuid } from "../schemas";
import { labelledAmounts } from "../views";

/** What operators look at: the cluster, the books, and one live actor. Admins and auditors. */
export const adminOperations = [
  operation({
    name: "admin.cluster",
    method: "GET",
    path: "/admin/cluster",
    summary: "The nodes: shards and lease ages, actors loaded, mailbox depths, health, bus messages dropped",
    input: z.strictObject({}),
    output: ClusterView,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: {},
    run: async ({ deps: { host, cluster } }) =>
      ok(cluster ? { mode: "cluster", ...(await cluster.clusterStatus()) } : { mode: "single", nodes: [{ nodeId: "local", actorsLoaded: host.size, mailboxDepth: host.mailboxDepth }] }),
  }),
  operation({
    name: "admin.verify",
    method: "GET",
    path: "/admin/verify",
    summary: "Recompute every balance from the postings and report any difference",
    input: z.strictObject({}),
    output: VerifyReport,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: {},
    run: ({ deps }) => ok(verifyLedger(deps.db)),
  }),
  operation({
    name: "admin.reconciliation",
    method: "GET",
    path: "/admin/reconciliation",
    summary: "Compare what Stripe reports (PaymentIntents, refunds, disputes, payouts, transfers) with the ledger and list every difference",
    input: z.strictObject({
      since: z
        .string()
        .max(40)
        .refine((s) => /^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(s) && !Number.isNaN(Date.parse(s)), "a date (2025-01-31) or an ISO-8601 time with its offset")
        .optional()
        .describe("only objects created since then (default: everything)"),
    }),
    output: ReconciliationReport,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { since: "2025-01-31" },
    run: async ({ deps }, input) => {
      if (!deps.stripe) throw new CofferError("STRIPE_NOT_CONFIGURED", "Stripe is not configured on this node");
      try {
        const report = await reconcile(deps.db, deps.stripe.client, input.since ? { since: new Date(input.since) } : {});
        return ok({ ...report });
      } catch (error) {
        // Stripe not answering is a 503 (retry later); anything else is ours and stays a 500.
        if (error instanceof Stripe.errors.StripeError) throw stripeProblem(error, "reconciliation");
        throw error;
      }
    },
  }),
  operation({
    name: "admin.actors.get",
    method: "GET",
    path: "/admin/wallets/:walletId/state",
    summary: "The live actor of a wallet or chama on the node that answers: its state in memory and its mailbox",
    input: z.strictObject({ walletId: Uuid.describe("a wallet's or a chama's id") }),
    output: ActorState,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { walletId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b" },
    run: async ({ deps }, input) => {
      const actor = deps.host.inspect(input.walletId);
      const context = actor.context as { asset?: unknown } | null;
      // Amounts labelled both ways (postedMinor "1250", posted "12.50"): decimals like every other answer.
      return ok({ walletId: input.walletId, ...actor, context: context === null ? null : labelledAmounts(context, String(context.asset)) });
    },
  }),
];
