import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { CofferError, problem } from "../../lib/errors";
import { log, logs } from "../../lib/log";
import type { Principal } from "../../lib/principal";
import { authenticate } from "./auth";
import { rateLimits } from "./rate-limit";
import { registerHealth } from "./health";
import { finalDocsHeaders, registerDocs } from "./docs";
import { registerAdminUi } from "./admin-ui";
import { registerOperations } from "./operations";
import { registerGraphql } from "../graphql/server";
import { registerStripeWebhook } from "./stripe-webhook";
import { routeOf } from "../monitoring/metrics";
import { tiersFrom } from "../security/rate-limit";
import type { HttpDeps } from "./deps";
import { instanceOf, sendError, sendProblem } from "./respond";

const MAX_BODY_BYTES = 64 * 1024;

/**
 * The methods the app's routes take for a path (GET brings HEAD), from the routes registered when
 * it is first asked: the operation table's, health's and the docs'. Hono patterns here are
 * `:name` (one segment) and `:name{regex}`.
 */
function routeMethods(app: Hono): (path: string) => string[] {
  let routes: { method: string; pattern: RegExp }[] | undefined;
  return (path) => {
    routes ??= app.routes
      .filter((r) => r.method !== "ALL" && r.path !== "*")
      .map((r) => ({ method: r.method, pattern: patternOf(r.path) }));
    const methods = new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}

function patternOf(path: string): RegExp {
  const source = path
    .split("/")
    .map((part) => {
      const param = /^:[A-Za-z0-9_]+(?:\{(.+)\})?$/.exec(part);
      if (param) return param[1] ? `(?:${param[1]})` : "[^/]+";
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return new RegExp(`^${source}$`);
}

/**
 * Hono's body limit, without its cost for the usual request: one that says its length (and is not
 * chunked) is judged by that alone, exactly as hono judges it, without opening the body as a stream
 * (which a Request makes on first asking for `.body`). Anything else goes through hono's own check,
 * which counts the bytes as they come.
 */
function bodyLimitOf(maxSize: number): MiddlewareHandler {
  const limited = bodyLimit({
    maxSize,
    onError: (c) => sendProblem(c, problem("PAYLOAD_TOO_LARGE", `bodies are limited to ${maxSize} bytes`, instanceOf(c))),
  });
  return (c, next) => {
    const headers = c.req.raw.headers;
    const length = headers.get("content-length");
    if (length !== null && parseInt(length, 10) <= maxSize && !headers.has("transfer-encoding")) return next();
    return limited(c, next);
  };
}

/** The REST API: one file per resource, one error handler, problem+json for every failure. */
export function buildHttpApp(deps: HttpDeps): Hono {
  const app = new Hono();

  // Outermost: the request id, the app-wide headers written last (after the secure headers below),
  // then what a docs route asked for (its own CSP and caching, see docs.ts), the access line and
  // the metrics. One layer, and the headers go straight onto the answer: `c.header` after the
  // route answered would copy the whole Response once per header.
  const metrics = deps.metrics;
  app.use("*", async (c, next) => {
    const requestId = Bun.randomUUIDv7();
    const started = performance.now();
    c.set("requestId" as never, requestId as never);
    await next();
    const res = c.res;
    res.headers.set("x-request-id", requestId);
    res.headers.set("cache-control", "no-store");
    finalDocsHeaders(c, res);
    const seconds = (performance.now() - started) / 1000;
    // One access line per request: the route pattern, never the raw path or query (ids stay out).
    if (logs("info")) {
      const principal = c.get("principal" as never) as Principal | undefined;
      log("info", "request", {
        requestId,
        method: c.req.method,
        route: c.req.routePath,
        status: res.status,
        ms: Math.round(seconds * 10_000) / 10,
        ...(principal ? { caller: `${principal.role}:${principal.sub}` } : {}),
      });
    }
    metrics?.http(c.req.method, routeOf(c), res.status, seconds);
  });
  // An API that serves JSON only: nothing may frame it, sniff it, or load anything from it.
  app.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      strictTransportSecurity: "max-age=31536000; includeSubDomains",
      xFrameOptions: "DENY",
      referrerPolicy: "no-referrer",
      crossOriginResourcePolicy: "same-origin",
    }),
  );
  // Cross-origin browser calls are off unless origins are configured.
  if (deps.corsOrigins.length) app.use("*", cors({ origin: deps.corsOrigins, allowHeaders: ["authorization", "content-type", "idempotency-key"], maxAge: 600 }));
  app.use("*", bodyLimitOf(MAX_BODY_BYTES));

  // Rate limits off: no layer at all, rather than layers that do nothing.
  const limits = rateLimits(deps.limiter, deps.config);
  if (deps.limiter) app.use("*", limits.beforeAuth);
  const authenticated = authenticate(deps.authenticator, (c) => limits.authFailed(c));
  app.use("*", authenticated);
  if (deps.limiter) app.use("*", limits.afterAuth);

  registerHealth(app, deps);
  registerDocs(app);
  registerAdminUi(app);
  registerOperations(app, deps, { limiter: deps.limiter, tiers: tiersFrom(deps.config) });
  registerGraphql(app, deps, { limiter: deps.limiter, tiers: tiersFrom(deps.config) }, deps.config);
  registerStripeWebhook(app, deps.stripe, deps.metrics);

  const methodsFor = routeMethods(app);
  app.notFound((c) => {
    // A path a route serves, asked with another method, is 405 with the methods it takes. Asked with
    // one of them, the route itself found nothing there (a docs file that is not one): 404.
    const allowed = methodsFor(c.req.path);
    if (!allowed.length || allowed.includes(c.req.method)) return sendProblem(c, new CofferError("NOT_FOUND", "no such route").toProblem(instanceOf(c)));
    const res = sendProblem(c, new CofferError("METHOD_NOT_ALLOWED", `this path takes ${allowed.join(", ")}`).toProblem(instanceOf(c)));
    res.headers.set("allow", allowed.join(", "));
    return res;
  });
  app.onError((error, c) => sendError(c, error));
  return app;
}
