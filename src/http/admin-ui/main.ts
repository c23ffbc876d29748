import { Api, ApiError } from "./api";
import { loadCapabilities } from "./capabilities";
import { h, replace } from "./dom";
import { forget, load, save, sessionFor, type Session } from "./session";
import { Drawer, errorText, type Ctx, type View } from "./ui";
import { alerts } from "./views/alerts";
import { deadLetters } from "./views/dead-letters";
import { overview } from "./views/overview";
import { payouts } from "./views/payouts";
import { transactions } from "./views/transactions";

/**
 * The dashboard's entry: sign-in (an admin's or an auditor's token, checked against the node), then
 * the shell (navigation, the signed-in operator, sign-out) and one view at a time, chosen by the
 * URL's hash so a view can be linked and reloaded.
 */
const VIEWS: { id: string; label: string; view: View }[] = [
  { id: "overview", label: "Overview", view: overview },
  { id: "transactions", label: "Transactions", view: transactions },
  { id: "payouts", label: "Payouts", view: payouts },
  { id: "alerts", label: "Alerts", view: alerts },
  { id: "dead-letters", label: "Dead letters", view: deadLetters },
];
const TOAST_MS = 5_000;

const root = document.getElementById("app")!;
const toasts = h("div", { class: "toasts", attrs: { "aria-live": "polite" } });
document.body.append(toasts);

function toast(message: string, kind: "ok" | "error" = "ok"): void {
  const el = h("div", { class: `toast ${kind}`, text: message, attrs: { role: kind === "error" ? "alert" : "status" } });
  toasts.append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

function signIn(message?: string): void {
  document.title = "Coffer · sign in";
  const token = h("textarea", { attrs: { id: "token", name: "token", rows: "4", autocomplete: "off", spellcheck: "false", placeholder: "eyJhbGciOiJFZERTQSIs…", required: true } });
  const error = h("p", { class: "form-error", text: message ?? "", attrs: { role: "alert" } });
  const submit = h("button", { class: "primary", text: "Sign in", attrs: { type: "submit" } });
  const form = h(
    "form",
    { class: "signin card" },
    h("h1", {}, h("img", { attrs: { src: "/admin/ui/icon.svg", alt: "", width: "28", height: "28" } }), " Coffer operations"),
    h("p", { class: "hint", text: "Paste an admin's or an auditor's token (bun run coffer token --sub you --role admin, or --role auditor). It is kept in this tab only and sent to this node only." }),
    h("label", { class: "field", attrs: { for: "token" } }, h("span", { text: "Token" }), token),
    error,
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const session = sessionFor(token.value);
    if (typeof session === "string") {
      error.textContent = session;
      return;
    }
    submit.disabled = true;
    error.textContent = "";
    try {
      // The node is the judge: a token it does not accept, or one that may not read admin routes, stops here.
      await new Api(session.token, () => {}).get("/admin/cluster");
      save(session);
      token.value = "";
      await shell(session);
    } catch (err) {
      error.textContent =
        err instanceof ApiError && err.status === 401
          ? "The node did not accept this token (expired, revoked, or from another key)."
          : err instanceof ApiError && err.status === 403
            ? "This token may not read the admin API."
            : errorText(err);
      submit.disabled = false;
    }
  });
  replace(root, h("main", { class: "center" }, form));
  token.focus();
}

async function shell(session: Session): Promise<void> {
  let stopped = false;
  let stopView: (() => void) | undefined;
  let timers: number[] = [];
  const signOut = (message?: string) => {
    if (stopped) return;
    stopped = true;
    stopView?.();
    for (const t of timers) clearInterval(t);
    window.removeEventListener("hashchange", route);
    forget();
    signIn(message);
  };
  const api = new Api(session.token, () => signOut("Your token was refused (it may have expired): sign in again."));
  const caps = await loadCapabilities();
  const detail = new Drawer();
  const lastError = new Map<number, string>();
  const ctx: Ctx = {
    api,
    caps,
    session,
    canAct: session.role === "admin",
    toast,
    detail,
    every(intervalMs, run) {
      const key = timers.length;
      const tick = async () => {
        if (stopped || document.hidden) return;
        try {
          await run();
          lastError.delete(key);
        } catch (error) {
          // Said once, not every few seconds while it lasts.
          const text = errorText(error);
          if (!stopped && lastError.get(key) !== text) toast(`Refresh failed: ${text}`, "error");
          lastError.set(key, text);
        }
      };
      void tick();
      timers.push(window.setInterval(() => void tick(), intervalMs));
    },
  };

  const nav = h("nav", { attrs: { "aria-label": "views" } });
  const main = h("main", { class: "view" });
  const who = h(
    "div",
    { class: "who" },
    h("span", { class: `pill role-${session.role}`, text: session.role, data: { test: "role" } }),
    h("span", { text: session.sub }),
    session.role === "auditor" ? h("span", { class: "muted", text: "read-only" }) : null,
    h("button", { class: "ghost", text: "Sign out", attrs: { type: "button" }, on: { click: () => signOut("Signed out.") } }),
  );
  replace(root, h("header", { class: "top" }, h("a", { class: "brand", attrs: { href: "#overview" } }, h("img", { attrs: { src: "/admin/ui/icon.svg", alt: "", width: "22", height: "22" } }), "Coffer operations"), nav, who), h("div", { class: "body" }, main, detail.el));

  function route(): void {
    const id = location.hash.replace(/^#/, "") || "overview";
    const chosen = VIEWS.find((v) => v.id === id) ?? VIEWS[0]!;
    stopView?.();
    for (const t of timers) clearInterval(t);
    timers = [];
    lastError.clear();
    detail.close();
    replace(nav, VIEWS.map((v) => h("a", { class: v.id === chosen.id ? "on" : "", text: v.label, attrs: { href: `#${v.id}`, "aria-current": v.id === chosen.id ? "page" : undefined } })));
    replace(main);
    document.title = `Coffer · ${chosen.label}`;
    stopView = chosen.view(main, ctx) ?? undefined;
  }
  window.addEventListener("hashchange", route);
  route();
}

const existing = load();
if (existing) {
  shell(existing).catch((error) => signIn(errorText(error)));
} else {
  signIn();
}
