import { ago, facts, h, pill, replace, shortId, table, time } from "../dom";
import type { Alert, AlertDetail, Page } from "../types";
import { actionForm, errorText, type Ctx, type View } from "../ui";
import { openTransaction } from "./transaction-detail";
import { select } from "./transactions";

const PAGE = 50;
const REFRESH_MS = 15_000;
const REVIEW = "/admin/alerts/{alertId}/review";

/** Monitoring's alerts by status and severity, newest first; an alert's panel shows what fired it and takes a review. */
export const alerts: View = (el, ctx) => {
  const status = select("status", "any status", ctx.caps.choices("/admin/alerts", "status"));
  const severity = select("severity", "any severity", ctx.caps.choices("/admin/alerts", "severity"));
  status.value = "open";
  const list = h("div", { data: { test: "alerts" } });
  const more = h("div");
  el.append(h("section", { class: "card" }, h("h2", { text: "Alerts" }), h("div", { class: "toolbar" }, status, severity), list, more));

  let rows: Alert[] = [];
  let next: string | null = null;
  const query = () => ({ status: status.value, severity: severity.value, limit: PAGE });

  function draw(): void {
    replace(
      list,
      table(
        [
          { label: "Severity", cell: (a: Alert) => pill(a.severity, "sev") },
          { label: "Rule", cell: (a: Alert) => a.rule.replace(/_/g, " ") },
          { label: "Subject", cell: (a: Alert) => [`${a.subject.kind} `, shortId(a.subject.id)] },
          { label: "Fired", cell: (a: Alert) => String(a.count), class: "num" },
          { label: "Status", cell: (a: Alert) => pill(a.status) },
          { label: "Last", cell: (a: Alert) => h("span", { title: time(a.lastAt), text: ago(a.lastAt) }) },
          { label: "Reviewed by", cell: (a: Alert) => a.reviewedBy ?? "—" },
        ],
        rows,
        { onOpen: (a) => void openAlert(ctx, a.id, () => void refresh()), rowTest: (a) => a.id, empty: "No alert matches." },
      ),
    );
    replace(
      more,
      next
        ? h("button", {
            class: "ghost",
            text: "Load more",
            attrs: { type: "button" },
            on: {
              click: async () => {
                const page = await ctx.api.get<Page<Alert>>("/admin/alerts", { ...query(), cursor: next });
                rows = [...rows, ...page.items];
                next = page.nextCursor;
                draw();
              },
            },
          })
        : null,
    );
  }

  async function refresh(): Promise<void> {
    try {
      const page = await ctx.api.get<Page<Alert>>("/admin/alerts", query());
      rows = page.items;
      next = page.nextCursor;
      draw();
    } catch (error) {
      replace(list, h("p", { class: "form-error", text: errorText(error) }));
    }
  }

  status.addEventListener("change", () => void refresh());
  severity.addEventListener("change", () => void refresh());
  ctx.every(REFRESH_MS, refresh);
};

export async function openAlert(ctx: Ctx, id: string, changed: () => void): Promise<void> {
  ctx.detail.loading("Alert");
  let a: AlertDetail;
  try {
    a = await ctx.api.get<AlertDetail>(`/admin/alerts/${encodeURIComponent(id)}`);
  } catch (error) {
    ctx.detail.open("Alert", h("p", { class: "form-error", text: errorText(error) }));
    return;
  }
  const reopen = () => void openAlert(ctx, id, changed);
  const nodes: Node[] = [
    facts([
      ["Id", h("code", { class: "id", text: a.id })],
      ["Rule", a.rule.replace(/_/g, " ")],
      ["Severity", pill(a.severity, "sev")],
      ["Status", h("span", { data: { test: "alert-status" } }, pill(a.status))],
      ["Subject", [`${a.subject.kind} `, h("code", { class: "id", text: a.subject.id })]],
      ["Window", `${time(a.window.start)} → ${time(a.window.end)}`],
      ["Fired", `${a.count} time${a.count === 1 ? "" : "s"} (first ${time(a.firstAt)}, last ${time(a.lastAt)})`],
      ...(a.reviewedBy ? ([["Reviewed", `${a.reviewedBy}, ${time(a.reviewedAt)}`]] as [string, string][]) : []),
    ]),
    h("h3", { text: "What fired it" }),
    facts(Object.entries(a.facts).map(([k, v]) => [k, String(v)])),
  ];
  if (a.held.length) {
    nodes.push(
      h("h3", { text: "Withdrawals it held" }),
      h(
        "ul",
        { class: "links" },
        a.held.map((w) => h("li", {}, h("button", { class: "link", text: w, attrs: { type: "button" }, on: { click: () => void openTransaction(ctx, w) } }))),
      ),
    );
  }
  nodes.push(
    h("h3", { text: "Reviews" }),
    a.reviews.length
      ? h(
          "ol",
          { class: "timeline", data: { test: "reviews" } },
          a.reviews.map((r) => h("li", {}, h("span", { class: "muted", text: time(r.at) }), ` ${r.reviewer}: `, pill(r.from), " → ", pill(r.to), r.note ? h("blockquote", { text: r.note }) : null)),
        )
      : h("p", { class: "empty", text: "Not reviewed yet." }),
  );
  const review = ctx.caps.action(REVIEW, "Review");
  const final = a.status === "resolved" || a.status === "dismissed";
  if (!ctx.canAct) nodes.push(h("p", { class: "hint", text: "Read-only: auditors see alerts; admins review them." }));
  else if (review && !final) {
    const host = h("div", { class: "review" });
    // Moving forward only: an investigating alert is resolved or dismissed, not investigated again.
    const form = actionForm(ctx, { ...review, fields: review.fields.map((f) => (f.name === "status" && f.options ? { ...f, options: f.options.filter((o) => o !== a.status) } : f)) }, { alertId: a.id }, host, () => {
      changed();
      reopen();
    }, { back: false });
    host.append(form);
    nodes.push(h("h3", { text: "Review" }), host);
  }
  ctx.detail.open(`Alert: ${a.rule.replace(/_/g, " ")}`, nodes, reopen);
}
