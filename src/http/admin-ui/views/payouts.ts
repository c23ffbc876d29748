import { h, pill, replace, shortId, table, time } from "../dom";
import type { NetworkRow, Stats, Transaction, TransactionPage } from "../types";
import { errorText, type View } from "../ui";
import { PAYOUT_STATUS_ORDER, pipelineTable } from "./overview";
import { openTransaction } from "./transaction-detail";

const DAY_MS = 86_400_000;
// The search covers at most 31 days up to the server's now: 30 leaves room for clocks apart.
const RANGE_DAYS = 30;
const PAGE = 100;
const REFRESH_MS = 10_000;

/**
 * Payouts: wallet and chama withdrawals of the last 30 days, by status and network, newest first,
 * with the pipeline per network above them. A payout's panel carries the actions the node offers
 * for its status (capabilities.ts reads them from /openapi.json).
 */
export const payouts: View = (el, ctx) => {
  const pipeline = h("div", {}, h("p", { class: "empty", text: "Loading…" }));
  const chips = h("div", { class: "chips", attrs: { role: "group", "aria-label": "status" } });
  const list = h("div", { data: { test: "payouts" } });
  const actions = ctx.caps.payoutActions.map((a) => a.label);
  el.append(
    h(
      "section",
      { class: "card" },
      h("h2", { text: "Payouts" }),
      h(
        "p",
        { class: "hint" },
        actions.length ? `Operator actions on this node: ${actions.join(", ")}.` : "This node offers no operator action on payouts.",
        " Retry and replace appear here once the node has those routes (chain payouts).",
        ctx.canAct ? "" : " You are signed in as an auditor: read-only.",
      ),
      pipeline,
    ),
    h("section", { class: "card" }, h("h2", { text: "Withdrawals" }), chips, list),
  );

  let status = "manual_review";
  const statuses = ["all", ...PAYOUT_STATUS_ORDER.filter((s) => ["requested", "manual_review", "processing", "completed", "failed", "cancelled", "rejected"].includes(s))];
  function drawChips(counts: Map<string, number>): void {
    replace(
      chips,
      statuses.map((s) =>
        h("button", {
          class: `chip${s === status ? " on" : ""}`,
          text: `${s === "manual_review" ? "held" : s.replace(/_/g, " ")}${s !== "all" && counts.has(s) ? ` (${counts.get(s)})` : ""}`,
          attrs: { type: "button", "aria-pressed": String(s === status) },
          data: { status: s },
          on: {
            click: () => {
              status = s;
              void refresh();
            },
          },
        }),
      ),
    );
  }

  async function load(kind: string): Promise<Transaction[]> {
    const query: Record<string, string> = { kind, limit: String(PAGE), from: new Date(Date.now() - RANGE_DAYS * DAY_MS).toISOString() };
    if (status !== "all") query.status = status;
    return (await ctx.api.get<TransactionPage>("/admin/transactions", query)).items;
  }

  async function refresh(): Promise<void> {
    try {
      const [stats, wallets, chamas] = await Promise.all([
        ctx.api.get<Stats<NetworkRow>>("/admin/stats/network"),
        load("withdrawal"),
        load("chama_withdrawal"),
      ]);
      replace(pipeline, pipelineTable(stats.items));
      const counts = new Map<string, number>();
      for (const r of stats.items) counts.set(r.status, (counts.get(r.status) ?? 0) + r.count);
      drawChips(counts);
      const rows = [...wallets, ...chamas].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
      replace(
        list,
        table(
          [
            { label: "When", cell: (t: Transaction) => time(t.createdAt) },
            { label: "Status", cell: (t: Transaction) => pill(t.status) },
            { label: "Amount", cell: (t: Transaction) => `${t.amount} ${t.asset}`, class: "num" },
            { label: "Network", cell: (t: Transaction) => t.network ?? "—" },
            { label: "From", cell: (t: Transaction) => [t.kind === "chama_withdrawal" ? "chama " : "wallet ", shortId(t.walletId ?? t.chamaId)] },
            { label: "Owner", cell: (t: Transaction) => t.ownerId ?? "—" },
            { label: "Id", cell: (t: Transaction) => shortId(t.id) },
          ],
          rows,
          { onOpen: (t) => void openTransaction(ctx, t.id, () => void refresh()), rowTest: (t) => t.id, empty: status === "all" ? "No payouts in the last 30 days." : `No ${status.replace(/_/g, " ")} payouts in the last 30 days.` },
        ),
        rows.length >= PAGE ? h("p", { class: "muted", text: `The newest ${PAGE} of each kind; search Transactions for older ones.` }) : null,
      );
    } catch (error) {
      replace(list, h("p", { class: "form-error", text: errorText(error) }));
    }
  }

  drawChips(new Map());
  ctx.every(REFRESH_MS, refresh);
};
