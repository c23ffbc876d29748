import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { chromiumFor, launchChromium, localPage } from "../support/browser";
import { DOCS_CSP } from "../../src/http/docs";
import { startTestNode, type TestNode } from "../support/node";

/**
 * The reference page at /docs, in a real browser (Debian's chromium; .ci/run installs it): it
 * renders the operations from /openapi.json, everything it loads comes from the node itself, and
 * its Content-Security-Policy blocks nothing it needs. Without chromium the browser test is
 * skipped on a developer's machine and fails under CI=true.
 */
const hasChromium = chromiumFor("the /docs page");

let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("docs");
});
afterAll(async () => {
  await t?.stop();
});

describe("served", () => {
  test("the page needs no credential and has its own strict CSP", async () => {
    const res = await fetch(`${t.baseUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toBe(DOCS_CSP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe");
    expect(csp).not.toMatch(/https?:/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
  });

  test("its files come from the swagger-ui-dist package, typed and cacheable", async () => {
    for (const [file, type] of [
      ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
      ["swagger-ui.css", "text/css; charset=utf-8"],
      ["init.js", "text/javascript; charset=utf-8"],
    ]) {
      const res = await fetch(`${t.baseUrl}/docs/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toBe(type!);
      expect(res.headers.get("etag"), file).toBeString();
      expect((await res.arrayBuffer()).byteLength, file).toBeGreaterThan(100);
    }
    expect((await fetch(`${t.baseUrl}/docs/swagger-ui-bundle.js`)).headers.get("cache-control")).toBe("public, max-age=86400");
    // The app's own answers keep theirs.
    expect((await fetch(`${t.baseUrl}/health`)).headers.get("cache-control")).toBe("no-store");
    expect((await fetch(`${t.baseUrl}/health`)).headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});

describe.skipIf(!hasChromium)("in a browser", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  test("renders the operations from /openapi.json, loading nothing from anywhere else", async () => {
    const requested: string[] = [];
    const problems: string[] = [];
    const { context, page } = await localPage(browser, { requested, problems });
    await page.goto(`${t.baseUrl}/docs`);
    await page.waitForSelector(".opblock-summary", { timeout: 30_000 });
    for (const summary of ["Pay from the wallet's available balance", "Start a chama (group wallet) with its first admin", "Issue an API key for a service (admins); the secret is shown once"]) {
      await expect(page.getByText(summary, { exact: true }).first().isVisible()).resolves.toBe(true);
    }
    expect(await page.locator(".opblock").count()).toBeGreaterThan(40);
    expect(await page.locator(".info .title").innerText()).toContain("Coffer");

    // Opening an operation shows its parameters and responses.
    const pay = page.locator(".opblock", { hasText: "Pay from the wallet's available balance" });
    await pay.locator(".opblock-summary").click();
    await pay.locator(".responses-table").first().waitFor({ timeout: 10_000 });
    expect(await pay.innerText()).toContain("Idempotency-Key");

    expect(requested.length).toBeGreaterThan(3);
    expect(requested.filter((url) => new URL(url).hostname !== "127.0.0.1")).toEqual([]);
    expect(requested).toContain(`${t.baseUrl}/openapi.json`);
    // Nothing blocked by the CSP, no script error.
    expect(problems).toEqual([]);
    await page.screenshot({ path: "/tmp/coffer-docs.png" });
    await context.close();
  }, 60_000);
});
