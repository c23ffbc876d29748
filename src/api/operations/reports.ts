import { z } from "zod";
import { ASSETS } from "../../../lib/assets";
import { CofferError } from "../../../lib/errors";
import { DailyStats, HealthView, NetworkStats, StatusStats, TransactionDetail, TransactionPage } from "../../admin/outputs";
import { dailyStats, networkStats, statusStats } from "../../admin/stats";
import { getTransaction, searchTransactions, TRANSACTION_KINDS } from "../../admin/transactions";
import { ok, operation, type OperationDeps } from "../operation";
import { PageLimit, Uuid } from "../schemas";

/**
 * What operators read about the money and the node (admins and auditors): transactions across
 * wallets and chamas, counts and sums from the ledger, and the health of every part the node uses.
 */
const Time = z.iso.datetime({ offset: true });
const Word = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:@-]+$/, "use letters, digits and . _ : @ -");
const Range = { from: Time.optional().describe("from this time (inclusive)"), to: Time.optional().describe("until this time (exclusive; default now)") };

const SearchQuery = z.strictObject({
  kind: z.enum(TRANSACTION_KINDS).optional(),
  status: Word.optional(),
  asset: z.enum(ASSETS as [string, ...string[]]).optional(),
  network: Word.optional().describe("a payout's network: a chain, or the kind of bank destination"),
  walletId: Uuid.optional(),
  chamaId: Uuid.optional(),
  ownerId: Word.optional().describe("a wallet's owner, or the member a chama withdrawal is for"),
  reference: Word.optional(),
  ...Range,
  limit: PageLimit,
  cursor: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/, "use the nextCursor of the previous page").optional(),
});

function healthOf(deps: OperationDeps) {
  if (!deps.admin) throw new CofferError("UNAVAILABLE", "the admin services are not running on this node");
  return deps.admin.health;
}

const stats = {
  daily: { summary: "Journals booked per day, kind and asset: how many and how much (from the ledger)", run: dailyStats, output: DailyStats },
  network: { summary: "Payouts per network, asset and status: how many and how much", run: networkStats, output: NetworkStats },
  status: { summary: "Withdrawals, chama withdrawals, transfers and deposits per status and asset: how many and how much", run: statusStats, output: StatusStats },
} as const;

export const reportOperations = [
  operation({
    name: "admin.transactions.list",
    method: "GET",
    path: "/admin/transactions",
    summary: "Search every transaction across wallets and chamas, newest first (at most 31 days at a time; the last 7 by default)",
    input: SearchQuery,
    output: TransactionPage,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { kind: "withdrawal", status: "requested", asset: "USD", limit: 50 },
    run: ({ deps }, q) => ok(searchTransactions(deps.db, q)),
  }),
  operation({
    name: "admin.transactions.get",
    method: "GET",
    path: "/admin/transactions/:transactionId",
    summary: "One transaction: its journals and postings, its state history, and the ids Stripe (or a chain) knows it by",
    input: z.strictObject({ transactionId: Uuid.describe("a credit's, payment's, deposit's, transfer's, withdrawal's or chama withdrawal's id") }),
    output: TransactionDetail,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { transactionId: "0193a2b4-6d7e-7f80-9a1b-2c3d4e5f6a7b" },
    run: ({ deps }, input) => ok(getTransaction(deps.db, input.transactionId)),
  }),
  ...(Object.keys(stats) as (keyof typeof stats)[]).map((by) =>
    operation({
      name: `admin.stats.${by}`,
      method: "GET",
      path: `/admin/stats/${by}`,
      summary: `${stats[by].summary} (at most 92 days at a time; the last 30 by default)`,
      input: z.strictObject(Range),
      output: stats[by].output as z.ZodType,
      status: 200,
      action: "admin.read",
      tier: "standard",
      idempotent: false,
      example: {},
      run: ({ deps }, q: { from?: string | undefined; to?: string | undefined }) => ok(stats[by].run(deps.db, q)),
    }),
  ),
  operation({
    name: "admin.health",
    method: "GET",
    path: "/admin/health",
    summary: "Every part the node depends on, with its state and latency: Postgres, NATS, the cluster, the JetStream relay, the outbox, monitoring, Stripe, each network's RPC",
    input: z.strictObject({}),
    output: HealthView,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: {},
    run: ({ deps }) => ok(healthOf(deps).report()),
  }),
];
