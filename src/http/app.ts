import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { CofferError, problem } from "../../lib/errors";
import { log } from "../../lib/log";
import type { Principal } from "../../lib/principal";
import { authenticate } from "./auth";
import { rateLimits } from "./rate-limit";
import { registerHealth } from "./health";
import { docsHeaders, registerDocs } from "./docs";
import { registerOperations } from "./operations";
import { tiersFrom } from "../security/rate-limit";
import type { HttpDeps } from "./deps";
import { instanceOf, sendError, sendProblem } from "./respond";

const MAX_BODY_BYTES = 64 * 1024;

/** The REST API: one file per resource, one error handler, problem+json for every failure. */
export function buildHttpApp(deps: HttpDeps): Hono {
  const app = new Hono();

  // Outermost, so the reference page keeps its own CSP and caching (see docs.ts).
  app.use("*", docsHeaders());
  app.use("*", async (c, next) => {
    const requestId = Bun.randomUUIDv7();
    const started = performance.now();
    c.set("requestId" as never, requestId as never);
    await next();
    c.header("x-request-id", requestId);
    c.header("cache-control", "no-store");
    // One access line per request: the route pattern, never the raw path or query (ids stay out).
    const principal = c.get("principal" as never) as Principal | undefined;
    log("info", "request", {
      requestId,
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ...(principal ? { caller: `${principal.role}:${principal.sub}` } : {}),
    });
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
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => sendProblem(c, problem("PAYLOAD_TOO_LARGE", `bodies are limited to ${MAX_BODY_BYTES} bytes`, instanceOf(c))),
    }),
  );

  const limits = rateLimits(deps.limiter, deps.config);
  app.use("*", limits.beforeAuth);
  const authenticated = authenticate(deps.authenticator);
  app.use("*", async (c, next) => {
    try {
      await authenticated(c, async () => {});
    } catch (error) {
      if (error instanceof CofferError && error.code === "UNAUTHENTICATED") await limits.authFailed(c);
      throw error;
    }
    return next();
  });
  app.use("*", limits.afterAuth);

  registerHealth(app, deps);
  registerDocs(app);
  registerOperations(app, deps, { limiter: deps.limiter, tiers: tiersFrom(deps.config) });

  app.notFound((c) => sendProblem(c, new CofferError("NOT_FOUND", "no such route").toProblem(instanceOf(c))));
  app.onError((error, c) => sendError(c, error));
  return app;
}
