import { facts, h, pill, shortId, table, time } from "../dom";
import type { TransactionDetail } from "../types";
import { actionButton, errorText, type Ctx } from "../ui";

const PAYOUT_KINDS = new Set(["withdrawal", "chama_withdrawal"]);

/**
 * One transaction in the detail panel: what it is, the actions this node offers on it (a payout's:
 * release, reject, cancel, and retry or replace where the node has them), its journals and postings,
 * its history and the ids other systems know it by.
 */
export async function openTransaction(ctx: Ctx, id: string, changed?: () => void): Promise<void> {
  ctx.detail.loading("Transaction");
  let tx: TransactionDetail;
  try {
    tx = await ctx.api.get<TransactionDetail>(`/admin/transactions/${encodeURIComponent(id)}`);
  } catch (error) {
    ctx.detail.open("Transaction", h("p", { class: "form-error", text: errorText(error) }));
    return;
  }
  const reopen = () => void openTransaction(ctx, id, changed);
  ctx.detail.open(`${tx.kind.replace(/_/g, " ")} ${tx.amount} ${tx.asset}`, render(ctx, tx, () => {
    changed?.();
    reopen();
  }), reopen);
}

function render(ctx: Ctx, tx: TransactionDetail, changed: () => void): Node[] {
  const nodes: Node[] = [
    facts([
      ["Id", h("code", { class: "id", text: tx.id, data: { test: "detail-id" } })],
      ["Kind", tx.kind.replace(/_/g, " ")],
      ["Status", pill(tx.status)],
      ["Amount", h("strong", { text: `${tx.amount} ${tx.asset}` })],
      ...(tx.walletId ? ([["Wallet", h("code", { class: "id", text: tx.walletId })]] as [string, Node][]) : []),
      ...(tx.chamaId ? ([["Chama", h("code", { class: "id", text: tx.chamaId })]] as [string, Node][]) : []),
      ...(tx.ownerId ? ([["Owner", tx.ownerId]] as [string, string][]) : []),
      ...(tx.counterparty ? ([["Counterparty", h("code", { class: "id", text: tx.counterparty.walletId ?? tx.counterparty.chamaId ?? "" })]] as [string, Node][]) : []),
      ...(tx.network ? ([["Network", tx.network]] as [string, string][]) : []),
      ...(tx.reference ? ([["Reference", tx.reference]] as [string, string][]) : []),
      ["Created", time(tx.createdAt)],
      ["Updated", time(tx.updatedAt)],
    ]),
  ];

  if (PAYOUT_KINDS.has(tx.kind)) {
    const actions = ctx.caps.payoutActions.filter((a) => a.appliesTo(tx.kind, tx.status));
    const formHost = h("div");
    const buttons = actions.map((a) => actionButton(ctx, a, { withdrawalId: tx.id, payoutId: tx.id }, formHost, changed));
    const section = h("section", { class: "actions", data: { test: "payout-actions" } }, h("h3", { text: "Actions" }));
    if (!ctx.canAct) section.append(h("p", { class: "hint", text: "Read-only: auditors see payouts; admins act on them." }));
    else if (!actions.length) section.append(h("p", { class: "hint", text: `No action this node offers applies to a ${tx.status.replace(/_/g, " ")} payout.` }));
    else section.append(h("div", { class: "row" }, buttons), formHost);
    nodes.push(section);
  }

  nodes.push(
    h("h3", { text: "Journals" }),
    ...(tx.journals.length
      ? tx.journals.map((j) =>
          h(
            "div",
            { class: "journal" },
            h("p", { class: "muted" }, `${j.kind} · `, shortId(j.id), ` · ${time(j.createdAt)}${j.reference ? ` · ${j.reference}` : ""}`),
            table<{ account: string; amount: string }>(
              [
                { label: "Account", cell: (p) => h("code", { class: "id", text: p.account }) },
                { label: `Amount (${j.asset})`, cell: (p) => p.amount, class: "num" },
              ],
              j.postings,
            ),
          ),
        )
      : [h("p", { class: "empty", text: "No journal yet (nothing booked)." })]),
    h("h3", { text: "History" }),
    h(
      "ol",
      { class: "timeline" },
      tx.history.map((e) => h("li", {}, h("span", { class: "muted", text: time(e.at) }), " ", h("code", { text: e.type }), e.status ? [" → ", pill(e.status)] : null)),
    ),
  );
  if (tx.external.length) {
    nodes.push(
      h("h3", { text: "Known elsewhere as" }),
      table<TransactionDetail["external"][number]>(
        [
          { label: "System", cell: (x) => x.system },
          { label: "Kind", cell: (x) => x.kind },
          { label: "Id", cell: (x) => h("code", { class: "id", text: x.id }) },
          { label: "Status", cell: (x) => (x.status ? pill(x.status) : "—") },
        ],
        tx.external,
      ),
    );
  }
  return nodes;
}
