import { ApiError } from "../api";
import { h, pill, replace, shortId, table, time } from "../dom";
import type { Transaction, TransactionPage } from "../types";
import { errorText, type Ctx, type View } from "../ui";
import { openTransaction } from "./transaction-detail";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY_MS = 86_400_000;
const PAGE = 50;

/** Where the search text is looked for: `auto` takes an id for a transaction, then a wallet, then a chama; other text for a reference. */
const FIELDS = [
  ["auto", "reference or id"],
  ["reference", "reference"],
  ["walletId", "wallet id"],
  ["ownerId", "owner"],
  ["chamaId", "chama id"],
  ["transactionId", "transaction id"],
] as const;

export const transactionColumns = [
  { label: "When", cell: (t: Transaction) => h("span", { title: t.createdAt, text: time(t.createdAt) }) },
  { label: "Kind", cell: (t: Transaction) => t.kind.replace(/_/g, " ") },
  { label: "Status", cell: (t: Transaction) => pill(t.status) },
  { label: "Amount", cell: (t: Transaction) => `${t.amount} ${t.asset}`, class: "num" },
  { label: "Wallet / chama", cell: (t: Transaction) => shortId(t.walletId ?? t.chamaId) },
  { label: "Owner", cell: (t: Transaction) => t.ownerId ?? "—" },
  { label: "Reference", cell: (t: Transaction) => t.reference ?? "—" },
  { label: "Id", cell: (t: Transaction) => shortId(t.id) },
];

export const transactions: View = (el, ctx) => {
  const q = h("input", { attrs: { type: "search", name: "q", placeholder: "order-42, a wallet id, an owner…", autocomplete: "off", "aria-label": "search" } });
  const field = h("select", { attrs: { name: "field", "aria-label": "search in" } }, FIELDS.map(([v, l]) => h("option", { text: l, attrs: { value: v } })));
  const kind = select("kind", "any kind", ctx.caps.choices("/admin/transactions", "kind"));
  const asset = select("asset", "any asset", ctx.caps.choices("/admin/transactions", "asset"));
  const status = h("input", { attrs: { type: "text", name: "status", placeholder: "status", "aria-label": "status", size: "12" } });
  const days = h("select", { attrs: { name: "days", "aria-label": "time range" } }, [
    h("option", { text: "last 24 hours", attrs: { value: "1" } }),
    h("option", { text: "last 7 days", attrs: { value: "7", selected: true } }),
    h("option", { text: "last 30 days", attrs: { value: "30" } }),
  ]);
  const results = h("div", { data: { test: "results" } });
  const form = h(
    "form",
    { class: "toolbar", attrs: { role: "search" } },
    q,
    h("span", { class: "muted", text: "in" }),
    field,
    kind,
    asset,
    status,
    days,
    h("button", { class: "primary", text: "Search", attrs: { type: "submit" } }),
  );
  el.append(h("section", { class: "card" }, h("h2", { text: "Transactions" }), form, results));

  let rows: Transaction[] = [];
  let next: string | null = null;
  let query: Record<string, string> = {};

  let searches = 0;
  async function search(): Promise<void> {
    // Only the latest search may draw: an earlier one answering late is dropped.
    const mine = ++searches;
    const latest = () => mine === searches;
    const text = q.value.trim();
    const where = field.value;
    const base: Record<string, string> = { limit: String(PAGE), from: new Date(Date.now() - Number(days.value) * DAY_MS).toISOString() };
    if (kind.value) base.kind = kind.value;
    if (asset.value) base.asset = asset.value;
    if (status.value.trim()) base.status = status.value.trim();
    replace(results, h("p", { class: "empty", text: "Searching…" }));
    try {
      if (text && where === "transactionId") {
        rows = [];
        replace(results, h("p", { class: "hint", text: "Its details are open on the right." }));
        return await openTransaction(ctx, text);
      }
      if (text && where === "auto" && UUID.test(text)) {
        // An id: what a wallet or a chama with it did; else the transaction with it (asked last: a miss is a 404).
        for (const filter of ["walletId", "chamaId"]) {
          const asked = { ...base, [filter]: text };
          const page = await ctx.api.get<TransactionPage>("/admin/transactions", asked);
          if (!latest()) return;
          if (page.items.length) return show(page, asked);
        }
        try {
          await ctx.api.get(`/admin/transactions/${encodeURIComponent(text)}`);
        } catch (error) {
          if (!latest()) return;
          if (error instanceof ApiError && error.status === 404) {
            rows = [];
            return replace(results, h("p", { class: "empty", text: "No wallet, chama or transaction with this id in this range." }));
          }
          throw error;
        }
        if (!latest()) return;
        rows = [];
        replace(results, h("p", { class: "hint", text: "A transaction with this id: its details are open on the right." }));
        return await openTransaction(ctx, text);
      }
      const asked = text ? { ...base, [where === "auto" ? "reference" : where]: text } : base;
      const page = await ctx.api.get<TransactionPage>("/admin/transactions", asked);
      if (latest()) show(page, asked);
    } catch (error) {
      if (latest()) replace(results, h("p", { class: "form-error", text: errorText(error) }));
    }
  }

  /** A first page (for the query it answers), or the next page of the query shown (`asked` undefined). */
  function show(page: TransactionPage, asked?: Record<string, string>): void {
    if (asked) query = asked;
    rows = asked ? page.items : [...rows, ...page.items];
    next = page.nextCursor;
    replace(
      results,
      h("p", { class: "muted", text: `${rows.length}${next ? "+" : ""} found since ${time(page.range?.from ?? query.from)}${page.range ? ` until ${time(page.range.to)}` : ""}` }),
      table(transactionColumns, rows, { onOpen: (t) => void openTransaction(ctx, t.id), rowTest: (t) => t.id, empty: "No transaction matches." }),
      next
        ? h("button", {
            class: "ghost",
            text: "Load more",
            attrs: { type: "button" },
            on: {
              click: async () => {
                try {
                  show(await ctx.api.get<TransactionPage>("/admin/transactions", { ...query, cursor: next }));
                } catch (error) {
                  ctx.toast(errorText(error), "error");
                }
              },
            },
          })
        : null,
    );
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void search();
  });
  void search();
};

export function select(name: string, any: string, values: string[]): HTMLSelectElement {
  return h("select", { attrs: { name, "aria-label": name } }, h("option", { text: any, attrs: { value: "" } }), values.map((v) => h("option", { text: v.replace(/_/g, " "), attrs: { value: v } })));
}
