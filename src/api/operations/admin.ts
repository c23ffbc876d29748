import { z } from "zod";
import { verifyLedger } from "../../ledger/verify";
import { ok, operation } from "../operation";
import { ActorState, ClusterView, VerifyReport } from "../outputs";
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
