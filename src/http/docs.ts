import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { openApiDocument } from "../api/openapi";

/**
 * The API's reference, for anyone (no credential; still IP rate-limited): the OpenAPI document at
 * /openapi.json, generated from the operation table, and an interactive page at /docs. The page is
 * Swagger UI from the `swagger-ui-dist` package, served by the node itself: no CDN, nothing loaded
 * from anywhere else, and a Content-Security-Policy that allows exactly that.
 */

/** The page: its scripts, styles, images and its one request (the document) all from this origin. */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Swagger UI's stylesheet draws its icons as inline SVG (data: URIs): not from anywhere else.
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Files of swagger-ui-dist the page uses, with their types. */
const VENDOR: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};
/** The vendor files change only with the package: browsers may keep them a day. */
const VENDOR_CACHE = "public, max-age=86400";
/** Ours change with each deploy: revalidate each time (cheap: ETag). */
const REVALIDATE = "no-cache";

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Coffer API reference</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css">
    <link rel="stylesheet" href="/docs/docs.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <noscript>This page needs JavaScript; the document itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
`;

// No validator badge (it would call an outside service); the document from this node only.
const INIT = `"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    displayOperationId: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    docExpansion: "list",
    filter: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
`;

const CSS = `body { margin: 0; background: #fafafa; }
.swagger-ui .information-container { padding-top: 12px; }
`;

/** A file served from memory, with its gzip and ETag (the admin dashboard serves its files the same way). */
export interface Asset {
  body: Uint8Array;
  gzip: Uint8Array;
  etag: string;
  type: string;
  cache: string;
}

export function asset(body: Uint8Array | string, type: string, cache: string): Asset {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return { body: bytes, gzip: Bun.gzipSync(bytes as Uint8Array<ArrayBuffer>), etag: `"${Bun.hash(bytes).toString(36)}"`, type, cache };
}

const assets = new Map<string, Asset>();

/** A vendor file, read from node_modules on first use and kept in memory (with its gzip). */
function vendor(name: string): Asset | undefined {
  const type = VENDOR[name];
  if (!type) return undefined;
  let found = assets.get(name);
  if (!found) {
    const dir = dirname(Bun.resolveSync("swagger-ui-dist/package.json", import.meta.dir));
    found = asset(readFileSync(join(dir, name)), type, VENDOR_CACHE);
    assets.set(name, found);
  }
  return found;
}

/** Header values the docs routes want in the final answer, whatever the app-wide middleware set. */
const FINAL_HEADERS = "docsHeaders";

/** Answer with `a` (304 on a matching ETag, gzip when asked), its caching and `extra` kept past the app-wide headers. */
export function serve(c: Context, a: Asset, extra: Record<string, string> = {}): Response {
  c.set(FINAL_HEADERS as never, { "cache-control": a.cache, ...extra } as never);
  const headers: Record<string, string> = { "content-type": a.type, etag: a.etag, vary: "accept-encoding" };
  if (c.req.header("if-none-match") === a.etag) return new Response(null, { status: 304, headers });
  if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "") && a.gzip.length < a.body.length) {
    return new Response(a.gzip, { headers: { ...headers, "content-encoding": "gzip" } });
  }
  return new Response(a.body, { headers });
}

/**
 * Put first in the app: the app-wide middleware (secure headers, `cache-control: no-store`) write
 * their headers after the route answered; this runs after them and puts back what a docs route
 * asked for (the page's own CSP, the vendor files' caching).
 */
export function docsHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    finalDocsHeaders(c, c.res);
  };
}

/** What `docsHeaders` does after the route, for an outer layer that already waits for it (src/http/app.ts). */
export function finalDocsHeaders(c: Context, res: Response): void {
  const wanted = c.get(FINAL_HEADERS as never) as Record<string, string> | undefined;
  if (!wanted) return;
  for (const [name, value] of Object.entries(wanted)) res.headers.set(name, value);
}

/** The routes; register them after authentication and rate limits (they are public, not unlimited). */
export function registerDocs(app: Hono): void {
  // Built once, at start-up: the table does not change while the node runs.
  const document = asset(openApiDocument().json, "application/json; charset=utf-8", REVALIDATE);
  const page = asset(PAGE, "text/html; charset=utf-8", REVALIDATE);
  const init = asset(INIT, "text/javascript; charset=utf-8", REVALIDATE);
  const css = asset(CSS, "text/css; charset=utf-8", REVALIDATE);

  const own = new Map([
    ["init.js", init],
    ["docs.css", css],
  ]);

  app.get("/openapi.json", (c) => serve(c, document));
  app.get("/docs", (c) => serve(c, page, { "content-security-policy": DOCS_CSP }));
  app.get("/docs/:file{[A-Za-z0-9._-]+}", (c, next) => {
    const file = c.req.param("file");
    const found = own.get(file) ?? vendor(file);
    return found ? serve(c, found) : next();
  });
}
