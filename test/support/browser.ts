import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

/**
 * Debian's chromium driven by playwright-core, for pages the node serves. `.ci/run` installs it;
 * without it a browser suite warns and skips on a developer's machine and fails under CI=true.
 */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether chromium is here; under CI=true its absence throws (`what` names the page for the message). */
export function chromiumFor(what: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `${CHROMIUM} is missing: ${what} cannot be checked in a browser (apt-get install chromium)`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`warning: ${message}; skipping`);
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
}

/**
 * A fresh context and page. Every request the page makes passes through `requested`, and one to a
 * host other than 127.0.0.1 is refused; console errors and page errors land in `problems`.
 */
export async function localPage(
  browser: Browser,
  log: { requested: string[]; problems: string[] },
  options: Parameters<Browser["newContext"]>[0] = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(options);
  await context.route("**/*", (route) => {
    const url = route.request().url();
    log.requested.push(url);
    return new URL(url).hostname === "127.0.0.1" ? route.continue() : route.abort();
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") log.problems.push(m.text());
  });
  page.on("pageerror", (e) => log.problems.push(e.message));
  return { context, page };
}
