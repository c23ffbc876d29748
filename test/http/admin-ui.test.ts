import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumFor, launchChromium, localPage } from "../support/browser";
import { OPERATIONS } from "../../src/api/operations";
import { ADMIN_UI_CSP } from "../../src/http/admin-ui";
import { ADMIN, people, tokenFor, user, type As } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { testDir } from "../support/temp";
import { alertsAbout, BANK, created, only, OTHER_BANK, setRules, settle, wallet } from "../monitoring/support";

/**
 * The operators' dashboard at /admin/ui, end to end in a real browser (Debian's chromium, driven by
 * playwright-core; .ci/run installs it) against a real node: an admin signs in with a token, finds a
 * payment by its reference and by its wallet, opens it, reviews an alert monitoring raised, releases
 * a withdrawal a `hold` rule parked; an auditor sees the same pages without a single action button.
 * Nothing the page loads or calls leaves 127.0.0.1, and nothing is blocked by its CSP or fails in
 * its scripts. Screenshots go to a temp folder (COFFER_SCREENSHOT_DIR keeps them somewhere else,
 * to look at). Without chromium the browser part is skipped on a developer's machine and fails
 * under CI=true.
 */
const hasChromium = chromiumFor("the /admin/ui dashboard");

// The dashboard drives the monitoring and admin API; without them there is nothing to check.
const NEEDED = ["admin.alerts.list", "admin.alerts.get", "admin.alerts.review", "admin.monitoring.rules.update", "admin.withdrawals.release", "admin.transactions.list", "admin.transactions.get", "admin.stats.network", "admin.health"];
const missing = NEEDED.filter((name) => !OPERATIONS.some((op) => op.name === name));
if (missing.length) throw new Error(`the dashboard test needs the admin and monitoring routes, and these operations are missing: ${missing.join(", ")}`);

const AUDITOR: As = { sub: "auditor-ui", role: "auditor" };
const screenshots = process.env.COFFER_SCREENSHOT_DIR ?? testDir("admin-ui-screens");
mkdirSync(screenshots, { recursive: true });

let t: TestNode;
const seed = { run: "", owner: "", walletId: "", otherWallet: "", paymentId: "", reference: "", alertId: "", heldId: "", secondHeldId: "" };

beforeAll(async () => {
  t = await startTestNode("admin-ui", { COFFER_TEST_STRIPE: "off" });
  // Rapid activity flags a fourth payment within five minutes; a first payout to a destination is held.
  await setRules(t, only({ rapidActivity: { outcome: "flag", max: 3 }, newDestination: { outcome: "hold" } }));
  const { owner, other } = people("owner", "other");
  seed.run = owner.slice(-8);
  seed.owner = owner;
  seed.walletId = await wallet(t, owner, "500.00");
  seed.otherWallet = await wallet(t, other, "50.00");
  for (let i = 1; i <= 5; i++) {
    const paid = await created(t, "POST", `/v1/wallets/${seed.walletId}/payments`, { amount: `${i}.00`, reference: `order-${seed.run}-${i}` });
    if (i === 3) {
      seed.paymentId = paid.id;
      seed.reference = `order-${seed.run}-3`;
    }
  }
  seed.heldId = (await created(t, "POST", `/v1/wallets/${seed.walletId}/withdrawals`, { amount: "40.00", destination: BANK }, user(owner))).id;
  await settle(t);
  const [alert] = await alertsAbout(t, seed.walletId, "rapid_activity");
  expect(alert).toMatchObject({ status: "open", severity: "high" });
  seed.alertId = alert.id;
  expect((await t.api("GET", `/v1/withdrawals/${seed.heldId}`)).body.status).toBe("manual_review");
});
afterAll(async () => {
  await t?.stop();
});

describe("served", () => {
  test("the page and its files need no credential; the page has its own strict CSP and holds no data", async () => {
    const res = await fetch(`${t.baseUrl}/admin/ui`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toBe(ADMIN_UI_CSP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe");
    expect(csp).not.toMatch(/https?:|\*/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const html = await res.text();
    expect(html).not.toContain(seed.walletId);
    expect(html).not.toMatch(/https?:\/\//);

    for (const [file, type, cache] of [
      ["app.js", "text/javascript; charset=utf-8", "no-cache"],
      ["admin.css", "text/css; charset=utf-8", "no-cache"],
      ["uPlot.min.css", "text/css; charset=utf-8", "public, max-age=86400"],
      ["icon.svg", "image/svg+xml", "no-cache"],
    ]) {
      const r = await fetch(`${t.baseUrl}/admin/ui/${file}`);
      expect(r.status, file).toBe(200);
      expect(r.headers.get("content-type"), file).toBe(type!);
      expect(r.headers.get("cache-control"), file).toBe(cache!);
      expect(r.headers.get("etag"), file).toBeString();
      const body = await r.text();
      expect(body.length, file).toBeGreaterThan(100);
      // Nothing in the page's own files points anywhere but this node (uPlot's license header aside).
      if (file !== "uPlot.min.css") expect(body.match(/https?:\/\/(?!www\.w3\.org\/)[^\s"'`)]+/g) ?? [], file).toEqual([]);
    }
  });

  test("the public prefix opens the page's files only: the admin API still wants a credential", async () => {
    expect((await fetch(`${t.baseUrl}/admin/ui/not-a-file.js`)).status).toBe(404);
    for (const path of ["/admin/alerts", "/admin/transactions", "/admin/uix", "/admin/ui-x/app.js"]) {
      expect((await fetch(`${t.baseUrl}${path}`)).status, path).toBe(401);
    }
  });
});

describe.skipIf(!hasChromium)("in a browser", () => {
  let browser: Browser;
  const requested: string[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function open(): Promise<{ context: BrowserContext; page: Page }> {
    const { context, page } = await localPage(browser, { requested, problems }, { viewport: { width: 1440, height: 1000 } });
    await page.goto(`${t.baseUrl}/admin/ui`);
    return { context, page };
  }

  async function signIn(page: Page, who: As): Promise<void> {
    await page.locator("#token").fill(await tokenFor(who));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("[data-test=role]").waitFor({ timeout: 15_000 });
    expect(await page.locator("[data-test=role]").innerText()).toBe(who.role);
  }

  async function text(page: Page, selector: string): Promise<string> {
    const found = page.locator(selector);
    return (await found.count()) ? ((await found.first().textContent()) ?? "") : "";
  }

  /** Polls `check` until it holds (the page refreshes on its own clock). */
  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await Bun.sleep(100);
    }
  }

  async function go(page: Page, view: string): Promise<void> {
    await page.locator("header.top nav a", { hasText: view }).click();
  }

  test("an admin signs in, watches the overview, finds a payment, reviews an alert and releases a held payout", async () => {
    const { context, page } = await open();
    // Not signed in: the sign-in form, nothing else.
    await page.locator("#token").waitFor();
    expect(await page.locator("header.top").count()).toBe(0);
    await page.locator("#token").fill("not a token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That is not a bearer token").waitFor();
    await signIn(page, ADMIN);

    // Overview: the tiles fill in from the admin API; the held payout and the open alerts show.
    await until("the alerts tile", async () => (await text(page, "[data-tile=alerts] strong")) !== "…", 20_000);
    expect(Number(await page.locator("[data-tile=alerts] strong").innerText())).toBeGreaterThanOrEqual(1);
    await until("one held payout", async () => (await text(page, "[data-tile=held] strong")) === "1", 20_000);
    const bank = page.locator("[data-test=pipeline] tr[data-network=bank]");
    await bank.waitFor();
    expect(await bank.innerText()).toContain("1");
    expect(await page.locator(".uplot canvas").count()).toBeGreaterThanOrEqual(3);
    // Quiet, then payments made now show as payments per second within a refresh or two.
    await until("a quiet moment", async () => (await text(page, "[data-tile=payments] strong")) === "0.00");
    for (let i = 0; i < 4; i++) await created(t, "POST", `/v1/wallets/${seed.otherWallet}/payments`, { amount: "1.00" });
    await until("payments per second above 0", async () => Number(await text(page, "[data-tile=payments] strong")) > 0);
    await until("the node's health", async () => (await text(page, "[data-tile=health] strong")) === "ok");
    await page.screenshot({ path: join(screenshots, "admin-overview.png"), fullPage: true });

    // Transactions: by reference, one payment; its panel shows its journal.
    await go(page, "Transactions");
    await page.locator("input[name=q]").fill(seed.reference);
    await page.getByRole("button", { name: "Search" }).click();
    const row = page.locator(`[data-test=results] tr[data-test="${seed.paymentId}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await page.locator("[data-test=results] tbody tr").count()).toBe(1);
    await row.click();
    await page.locator("[data-test=detail-id]").waitFor();
    expect(await page.locator("[data-test=detail-id]").innerText()).toBe(seed.paymentId);
    const drawer = await page.locator("aside.drawer").innerText();
    expect(drawer).toContain(seed.reference);
    expect(drawer).toContain("3.00");
    expect(drawer).toContain(seed.walletId);
    // By wallet: its credit, five payments and the withdrawal, newest first.
    await page.locator("input[name=q]").fill(seed.walletId);
    await page.getByRole("button", { name: "Search" }).click();
    await until("the wallet's seven transactions", async () => (await page.locator("[data-test=results] tbody tr").count()) === 7);
    expect(await page.locator("[data-test=results] tbody tr").first().getAttribute("data-test")).toBe(seed.heldId);
    await page.screenshot({ path: join(screenshots, "admin-transactions.png"), fullPage: true });

    // Alerts: the rapid-activity alert, reviewed twice through the page; the API agrees.
    await go(page, "Alerts");
    const alertRow = page.locator(`[data-test=alerts] tr[data-test="${seed.alertId}"]`);
    await alertRow.waitFor({ timeout: 10_000 });
    await alertRow.click();
    const review = page.locator("form[data-form=review]");
    await review.waitFor();
    await review.locator("select[name=status]").selectOption("investigating");
    await review.locator("textarea[name=note]").fill("asked the owner about five payments in a minute");
    await review.getByRole("button", { name: "Confirm review" }).click();
    await page.locator("[data-test=alert-status] .pill", { hasText: "investigating" }).waitFor({ timeout: 10_000 });
    let alert = (await t.api("GET", `/admin/alerts/${seed.alertId}`)).body;
    expect(alert).toMatchObject({ status: "investigating", reviewedBy: "admin#test-admin" });
    expect(alert.reviews).toEqual([expect.objectContaining({ from: "open", to: "investigating", note: "asked the owner about five payments in a minute" })]);
    await review.locator("select[name=status]").selectOption("resolved");
    await review.locator("textarea[name=note]").fill("a shop's checkout test: fine");
    await review.getByRole("button", { name: "Confirm review" }).click();
    await page.locator("[data-test=alert-status] .pill", { hasText: "resolved" }).waitFor({ timeout: 10_000 });
    alert = (await t.api("GET", `/admin/alerts/${seed.alertId}`)).body;
    expect(alert.status).toBe("resolved");
    expect(alert.reviews.map((r: { to: string; note: string }) => `${r.to}: ${r.note}`)).toEqual(["investigating: asked the owner about five payments in a minute", "resolved: a shop's checkout test: fine"]);
    // A resolved alert takes no more review.
    expect(await page.locator("form[data-form=review]").count()).toBe(0);

    // Payouts: the held withdrawal offers release and reject (and nothing the node has no route for).
    await go(page, "Payouts");
    const held = page.locator(`[data-test=payouts] tr[data-test="${seed.heldId}"]`);
    await held.waitFor({ timeout: 10_000 });
    await held.click();
    const actions = page.locator("[data-test=payout-actions]");
    await actions.locator("button[data-action=release]").waitFor();
    const offered = await Promise.all((await actions.locator("button[data-action]").all()).map((b) => b.getAttribute("data-action")));
    const routes = new Set(OPERATIONS.map((op) => `${op.method} ${op.path}`));
    expect(offered).toEqual(["release", "reject"]);
    for (const verb of ["retry", "replace"]) {
      if (!routes.has(`POST /admin/withdrawals/:withdrawalId/${verb}`)) expect(await actions.locator(`button[data-action=${verb}]`).count()).toBe(0);
    }
    await actions.locator("button[data-action=release]").click();
    const form = page.locator("form[data-form=release]");
    await form.locator("textarea[name=note]").fill("the owner confirmed the account");
    await form.getByRole("button", { name: "Confirm release" }).click();
    await page.locator(".toast", { hasText: "Release: done." }).waitFor({ timeout: 10_000 });
    expect((await t.api("GET", `/v1/withdrawals/${seed.heldId}`)).body.status).toBe("requested");
    const [hold] = await t.node.db`select status, decided_by, note from monitoring_holds where withdrawal_id = ${seed.heldId}`;
    expect(hold).toMatchObject({ status: "released", decided_by: "admin#test-admin", note: "the owner confirmed the account" });
    // Its panel now shows it requested, with cancel (a wallet withdrawal's route) instead of release.
    await page.locator("aside.drawer .pill", { hasText: "requested" }).first().waitFor({ timeout: 10_000 });
    await actions.locator("button[data-action=cancel]").waitFor();
    expect(await actions.locator("button[data-action=release]").count()).toBe(0);
    await page.screenshot({ path: join(screenshots, "admin-payout.png"), fullPage: true });

    // Dead letters: this node has no dead-letter queue routes, and says so.
    await go(page, "Dead letters");
    const hasQueue = [...routes].some((r) => /dead-?letter|dlq/i.test(r));
    if (!hasQueue) await page.locator("[data-test=dlq-unavailable]", { hasText: "Not available on this node." }).waitFor();
    await page.locator("[data-test=webhook-failures] p.hint").waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(screenshots, "admin-dead-letters.png"), fullPage: true });

    // Sign out: the token is gone from the tab.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#token").waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await context.close();

    expect(problems).toEqual([]);
  }, 120_000);

  test("an auditor sees the same pages read-only: no action button anywhere, no review form", async () => {
    // Another first payout to a new destination: held, for the auditor to look at.
    seed.secondHeldId = (await created(t, "POST", `/v1/wallets/${seed.walletId}/withdrawals`, { amount: "15.00", destination: OTHER_BANK }, user(seed.owner))).id;
    await settle(t);
    const [openAlert] = (await alertsAbout(t, seed.owner, "new_destination")).filter((a) => a.held.includes(seed.secondHeldId));
    expect(openAlert).toBeDefined();

    const { context, page } = await open();
    await signIn(page, AUDITOR);
    expect(await page.locator("header.top").innerText()).toContain("read-only");
    await until("one held payout", async () => (await text(page, "[data-tile=held] strong")) === "1", 20_000);

    await go(page, "Payouts");
    const held = page.locator(`[data-test=payouts] tr[data-test="${seed.secondHeldId}"]`);
    await held.waitFor({ timeout: 10_000 });
    await held.click();
    const actions = page.locator("[data-test=payout-actions]");
    await actions.getByText("Read-only").waitFor();
    expect(await actions.locator("button").count()).toBe(0);

    await go(page, "Alerts");
    const row = page.locator(`[data-test=alerts] tr[data-test="${openAlert.id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await row.click();
    await page.locator("[data-test=alert-status]").waitFor();
    await page.locator("aside.drawer").getByText("Read-only").waitFor();
    expect(await page.locator("form[data-form=review]").count()).toBe(0);
    await page.screenshot({ path: join(screenshots, "auditor-alert.png"), fullPage: true });

    // No view draws a button that acts: only navigation, filters, closing the panel and signing out.
    for (const view of ["Overview", "Transactions", "Payouts", "Alerts", "Dead letters"]) {
      await go(page, view);
      await page.waitForTimeout(500);
      expect(await page.locator("button[data-action], button.danger, form[data-form]").count(), view).toBe(0);
    }
    // And the API refuses an auditor anyway.
    expect((await t.api("POST", `/admin/withdrawals/${seed.secondHeldId}/release`, {}, { as: AUDITOR })).status).toBe(403);
    await context.close();

    expect(problems).toEqual([]);
    // Everything the page loaded or called came from the node itself, and no call carried the token in its URL.
    expect(requested.length).toBeGreaterThan(20);
    expect(requested.filter((url) => new URL(url).hostname !== "127.0.0.1")).toEqual([]);
    const tokens = [await tokenFor(ADMIN), await tokenFor(AUDITOR)];
    expect(requested.filter((url) => tokens.some((token) => url.includes(token.slice(-20))))).toEqual([]);
    expect(requested).toContain(`${t.baseUrl}/admin/ui/app.js`);
    expect(requested).toContain(`${t.baseUrl}/openapi.json`);
  }, 120_000);
});
