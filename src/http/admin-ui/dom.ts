/**
 * Building the page without a framework and without HTML strings: every value from the API goes
 * into the DOM as text (never as markup), so a reference or a note cannot inject anything, and no
 * inline style or script is ever needed (the CSP allows neither).
 */
type Child = Node | string | number | null | undefined | false;
type Props = {
  class?: string;
  text?: string;
  title?: string;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
  data?: Record<string, string>;
  attrs?: Record<string, string | boolean | undefined>;
};

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.text !== undefined) el.textContent = props.text;
  if (props.title) el.title = props.title;
  for (const [name, value] of Object.entries(props.data ?? {})) el.dataset[name] = value;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (name === "style") throw new Error("no inline styles: the CSP refuses them; use a class");
    if (value === true) el.setAttribute(name, "");
    else if (typeof value === "string") el.setAttribute(name, value);
  }
  for (const [name, handler] of Object.entries(props.on ?? {})) el.addEventListener(name, handler as EventListener);
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "number" ? String(child) : child);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  clear(el);
  append(el, children);
}

/** A status or severity as a coloured pill (the colours are classes in admin.css). */
export function pill(value: string, kind = "status"): HTMLElement {
  return h("span", { class: `pill ${kind}-${value.replace(/[^a-z0-9_-]/gi, "")}`, text: value.replace(/_/g, " ") });
}

export function time(iso: string | undefined | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function ago(iso: string): string {
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.max(0, seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  return `${Math.round(value / 60_000)} min`;
}

/** A long id shortened for a table cell; the whole one is its tooltip and is what gets copied. */
export function shortId(id: string | undefined): HTMLElement {
  if (!id) return h("span", { text: "—" });
  return h("code", { class: "id", title: id, text: id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id });
}

export interface Column<T> {
  label: string;
  cell: (row: T) => Child | Child[];
  class?: string;
}

/** A table whose rows open something when clicked (or reached with the keyboard and Enter). */
export function table<T>(columns: Column<T>[], rows: T[], options: { onOpen?: (row: T) => void; rowTest?: (row: T) => string; empty?: string } = {}): HTMLElement {
  if (!rows.length) return h("p", { class: "empty", text: options.empty ?? "Nothing here." });
  const body = h("tbody");
  for (const row of rows) {
    const tr = h(
      "tr",
      options.onOpen ? { class: "clickable", attrs: { tabindex: "0" }, data: options.rowTest ? { test: options.rowTest(row) } : {} } : {},
      columns.map((c) => h("td", { class: c.class ?? "" }, c.cell(row))),
    );
    if (options.onOpen) {
      const open = options.onOpen;
      tr.addEventListener("click", () => open(row));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter") open(row);
      });
    }
    body.append(tr);
  }
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class ?? "", text: c.label })))), body);
}

/** A labelled list of facts (a transaction's fields, an alert's facts). */
export function facts(entries: [string, Child | Child[]][]): HTMLElement {
  return h("dl", { class: "facts" }, entries.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

export function card(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", { text: title }), ...children);
}
