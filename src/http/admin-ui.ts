import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Hono } from "hono";
import { log } from "../../lib/log";
import { asset, serve, type Asset } from "./docs";

/**
 * The operators' dashboard at /admin/ui: a static page (src/http/admin-ui/) that holds no data. It
 * is public like /docs (src/http/auth.ts `isPublicPath`): every figure on it comes from an
 * authenticated call the browser makes to this node's own API with the token the operator pasted,
 * so the policy table decides what an admin or an auditor sees and may do, exactly as for any
 * other caller. Nothing is loaded from anywhere else, and the CSP below says so to the browser.
 *
 * The script is our TypeScript (src/http/admin-ui/*.ts) and uPlot from node_modules, bundled by
 * Bun.build into one ES module the first time a browser asks for it (not at start-up: most nodes
 * never serve the page, and test nodes start by the hundred), then kept in memory.
 */
export const ADMIN_UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const UI_DIR = join(import.meta.dir, "admin-ui");
/** Ours change with each deploy: revalidate each time (cheap: ETag). */
const REVALIDATE = "no-cache";
/** uPlot's stylesheet changes only with the package. */
const VENDOR_CACHE = "public, max-age=86400";

const FILES: Record<string, { type: string; load: () => Asset }> = {
  "admin.css": { type: "text/css; charset=utf-8", load: () => asset(readFileSync(join(UI_DIR, "admin.css")), "text/css; charset=utf-8", REVALIDATE) },
  "icon.svg": { type: "image/svg+xml", load: () => asset(readFileSync(join(UI_DIR, "icon.svg")), "image/svg+xml", REVALIDATE) },
  "uPlot.min.css": {
    type: "text/css; charset=utf-8",
    load: () => asset(readFileSync(join(dirname(Bun.resolveSync("uplot/package.json", import.meta.dir)), "dist", "uPlot.min.css")), "text/css; charset=utf-8", VENDOR_CACHE),
  },
};

const loaded = new Map<string, Asset>();
let bundle: Promise<Asset> | undefined;

function file(name: string): Asset | undefined {
  const entry = FILES[name];
  if (!entry) return undefined;
  let found = loaded.get(name);
  if (!found) {
    found = entry.load();
    loaded.set(name, found);
  }
  return found;
}

/** The page's one script: built once per process; a failed build is logged and tried again next time. */
function script(): Promise<Asset> {
  bundle ??= (async () => {
    const started = performance.now();
    const result = await Bun.build({ entrypoints: [join(UI_DIR, "main.ts")], target: "browser", format: "esm", minify: true });
    if (!result.success || result.outputs.length !== 1) {
      throw new Error(`admin UI bundle failed: ${result.logs.map((l) => l.message).join("; ") || `${result.outputs.length} outputs`}`);
    }
    const js = await result.outputs[0]!.text();
    log("info", "admin ui bundled", { bytes: js.length, ms: Math.round(performance.now() - started) });
    return asset(js, "text/javascript; charset=utf-8", REVALIDATE);
  })().catch((error) => {
    bundle = undefined;
    throw error;
  });
  return bundle;
}

/** Register after authentication and rate limits (public, not unlimited), like the docs routes. */
export function registerAdminUi(app: Hono): void {
  const page = asset(readFileSync(join(UI_DIR, "index.html")), "text/html; charset=utf-8", REVALIDATE);
  app.get("/admin/ui", (c) => serve(c, page, { "content-security-policy": ADMIN_UI_CSP }));
  app.get("/admin/ui/:file{[A-Za-z0-9._-]+}", async (c, next) => {
    const name = c.req.param("file");
    if (name === "app.js") return serve(c, await script());
    const found = file(name);
    return found ? serve(c, found) : next();
  });
}
