import { ApiError, fill, type Api } from "./api";
import type { Capabilities, Field, RouteAction } from "./capabilities";
import { h, replace } from "./dom";
import type { Session } from "./session";

/** What every view gets: the API with the operator's token, what the node offers, and the page's shared parts. */
export interface Ctx {
  api: Api;
  caps: Capabilities;
  session: Session;
  /** Admins act; auditors read (the node refuses them anyway: this only keeps buttons off their page). */
  canAct: boolean;
  toast(message: string, kind?: "ok" | "error"): void;
  detail: Drawer;
  /** Registers a repeating refresh, stopped when the view is left; skipped while the tab is hidden. */
  every(intervalMs: number, run: () => Promise<void> | void): void;
}

/** A view: drawn into `el`; what it returns is called when another view replaces it. */
export type View = (el: HTMLElement, ctx: Ctx) => void | (() => void);

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return "This credential may not do that (the node refused it).";
    return `${error.detail || error.code} (${error.code})`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The detail panel on the right: one thing at a time (a transaction, a payout, an alert). */
export class Drawer {
  private readonly body = h("div", { class: "drawer-body" });
  private readonly heading = h("h2");
  readonly el = h(
    "aside",
    { class: "drawer", attrs: { "aria-label": "details", hidden: true } },
    h("header", {}, this.heading, h("button", { class: "ghost", text: "Close", attrs: { type: "button", "aria-label": "close the details" }, on: { click: () => this.close() } })),
    this.body,
  );
  /** Called again to redraw the open item (after an action changed it). */
  private reopen: (() => void) | undefined;

  open(title: string, content: Node | Node[], reopen?: () => void): void {
    this.heading.textContent = title;
    replace(this.body, ...(Array.isArray(content) ? content : [content]));
    this.reopen = reopen;
    this.el.hidden = false;
  }

  loading(title: string): void {
    this.open(title, h("p", { class: "empty", text: "Loading…" }));
  }

  refresh(): void {
    this.reopen?.();
  }

  close(): void {
    this.el.hidden = true;
    this.reopen = undefined;
  }
}

/**
 * A button for a route's action; clicking it opens its form (the body's fields from the schema: a
 * note, a reason, a status…), and submitting calls the route. Nothing is drawn for an auditor.
 */
export function actionButton(ctx: Ctx, action: RouteAction, params: Record<string, string>, host: HTMLElement, done: (result: unknown) => void): HTMLElement | null {
  if (!ctx.canAct) return null;
  return h("button", {
    class: action.danger ? "danger" : "primary",
    text: action.label,
    title: action.summary,
    attrs: { type: "button" },
    data: { action: action.verb },
    on: { click: () => replace(host, actionForm(ctx, action, params, host, done)) },
  });
}

export function actionForm(ctx: Ctx, action: RouteAction, params: Record<string, string>, host: HTMLElement, done: (result: unknown) => void, options: { back?: boolean } = {}): HTMLElement {
  const inputs = new Map<string, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>();
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  const submit = h("button", { class: action.danger ? "danger" : "primary", text: `Confirm ${action.label.toLowerCase()}`, attrs: { type: "submit" } });
  const form = h(
    "form",
    { class: "action-form", data: { form: action.verb } },
    h("p", { class: "hint", text: action.summary }),
    action.fields.map((f) => fieldInput(f, inputs)),
    error,
    h("div", { class: "row" }, submit, options.back === false ? null : h("button", { class: "ghost", text: "Back", attrs: { type: "button" }, on: { click: () => replace(host) } })),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body: Record<string, unknown> = {};
    for (const f of action.fields) {
      const input = inputs.get(f.name)!;
      if (f.type === "boolean") {
        body[f.name] = (input as HTMLInputElement).checked;
        continue;
      }
      const value = input.value.trim();
      if (!value) continue; // optional and left empty: not sent (an empty note is not a note)
      body[f.name] = f.type === "number" || f.type === "integer" ? Number(value) : value;
    }
    submit.disabled = true;
    error.textContent = "";
    try {
      const result = await ctx.api.post(fill(action.path, params), body);
      replace(host);
      ctx.toast(`${action.label}: done.`);
      done(result);
    } catch (err) {
      error.textContent = errorText(err);
      submit.disabled = false;
    }
  });
  return form;
}

function fieldInput(f: Field, inputs: Map<string, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>): HTMLElement {
  const id = `field-${f.name}-${Math.random().toString(36).slice(2, 8)}`;
  let input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
  if (f.options) {
    input = h("select", { attrs: { id, name: f.name } }, f.options.map((o) => h("option", { text: o.replace(/_/g, " "), attrs: { value: o } })));
  } else if (f.type === "boolean") {
    input = h("input", { attrs: { id, name: f.name, type: "checkbox" } });
  } else if (f.name === "note" || f.name === "reason") {
    input = h("textarea", { attrs: { id, name: f.name, rows: "3", maxlength: f.maxLength ? String(f.maxLength) : undefined, required: f.required } });
  } else {
    input = h("input", { attrs: { id, name: f.name, type: f.type === "string" ? "text" : "number", required: f.required } });
  }
  inputs.set(f.name, input);
  const label = `${f.name.replace(/([A-Z])/g, " $1").toLowerCase()}${f.required ? "" : " (optional)"}`;
  return h("label", { class: "field", attrs: { for: id } }, h("span", { text: label }), input, f.description ? h("small", { text: f.description }) : null);
}
