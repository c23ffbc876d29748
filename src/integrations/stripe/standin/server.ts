import Stripe from "stripe";
import { handleControl } from "./control";
import { AUTOMATIC, Engine, type RequestInfo } from "./engine";
import { apiError, errorJson, invalidRequest, StripeApiError, unrecognizedUrl } from "./errors";
import { type ActiveFault, Faults, type FaultSpec } from "./faults";
import { parseForm } from "./form";
import { fingerprintOf, IdempotencyStore, type StoredResponse } from "./idempotency";
import { newId } from "./ids";
import { matchRoute } from "./routes";
import { DEFAULT_LIMITS, StandinState } from "./store";
import {
  DEFAULT_RETRY,
  type Delivery,
  type DeliveryInput,
  type DeliveryMode,
  parseDeliveryMode,
  type RetryPolicy,
  WebhookDispatcher,
} from "./webhooks";
import { sleep, WorkTracker } from "./work";

export const DEFAULT_PORT = 12111;
export const DEFAULT_HOST = "127.0.0.1";

export interface StandinLimits {
  /** Objects kept per kind (PaymentIntents, charges, refunds, …); default 10 000. */
  maxObjects: number;
  /** Events kept (API and control); default 10 000. */
  maxEvents: number;
  /** Webhook delivery records kept; default 10 000. */
  maxDeliveries: number;
  /** Deliveries waiting to be sent; default 10 000. */
  maxQueuedDeliveries: number;
  /** Idempotency keys remembered (24 h each at most); default 10 000. */
  maxIdempotencyKeys: number;
  /** Largest request body; default 1 MiB. */
  maxBodyBytes: number;
}

export interface StripeStandinOptions {
  /** Default 12111; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Where events are POSTed; none: events are only kept (and listed by /v1/events). */
  webhookUrl?: string;
  /** The `whsec_…` secret webhooks are signed with (required with `webhookUrl`). */
  webhookSecret?: string;
  /** `normal` (default), `twice`, `shuffled`, `late`, `late:<ms>`, comma-combined, or an object. */
  delivery?: DeliveryInput;
  /** Webhook retries on a non-2xx answer: attempts, backoff, timeout (see DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
  /** Webhook deliveries in flight at once; default 1 (in order). */
  deliveryConcurrency?: number;
  /** How long a `shuffled` burst gathers events; default 25 ms. */
  burstWindowMs?: number;
  /** `auto` (default): payouts settle by themselves after `settleDelayMs`; `manual`: only by the control API. */
  payouts?: "auto" | "manual";
  /** Delay before payouts settle and `pm_card_refundFail` refunds fail; default 100 ms. */
  settleDelayMs?: number;
  limits?: Partial<StandinLimits>;
  /** `api_version` on events; default the installed SDK's pinned version. */
  apiVersion?: string;
  /** Warnings (webhook give-ups, dropped deliveries). Default: console.warn. */
  log?: (line: string) => void;
  /** One line per API request through `log`; default false. */
  logRequests?: boolean;
}

export interface StripeStandin {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  /** Spread into the SDK's config: `new Stripe(key, { ...standin.stripeConfig })`. */
  readonly stripeConfig: { host: string; port: number; protocol: "http" };
  readonly state: StandinState;
  readonly engine: Engine;
  readonly apiVersion: string;
  /** Events, oldest first (optionally of one type). */
  events(type?: string): Stripe.Event[];
  /** Webhook delivery attempts with the endpoint's answers, oldest first. */
  deliveries(): Delivery[];
  delivery(): DeliveryMode;
  setDelivery(mode: DeliveryInput): DeliveryMode;
  setWebhook(url: string | undefined, secret?: string): void;
  webhookUrl(): string | undefined;
  injectFault(spec: FaultSpec): ActiveFault;
  faults(): ActiveFault[];
  clearFaults(): void;
  /** Test controls (also under /_standin/…). */
  closeDispute(id: string, status: "won" | "lost"): Stripe.Dispute;
  openDispute(chargeId: string, opts?: { reason?: string; amount?: number; inquiry?: boolean }): Stripe.Dispute;
  failRefund(id: string, failureReason?: string): Stripe.Refund;
  payPayout(id: string): Stripe.Payout;
  failPayout(id: string, failureCode?: string, failureMessage?: string): Stripe.Payout;
  resendEvent(id: string): void;
  /** Resolves once every webhook has been delivered (or given up) and nothing is scheduled. */
  idle(timeoutMs?: number): Promise<void>;
  /** Forget all objects, events, deliveries, idempotency keys and faults; keep the configuration. */
  reset(): void;
  stop(): Promise<void>;
}

const HANG_CAP_MS = 110_000;

function closeConnection(): Response {
  // An erroring body makes Bun drop the socket: the client sees ECONNRESET and no answer.
  return new Response(
    new ReadableStream({
      pull(controller) {
        controller.error();
      },
    }),
    { headers: { "content-type": "application/json" } },
  );
}

function redactKey(key: string): string {
  return key.length <= 12 ? "****" : `${key.slice(0, 8)}****${key.slice(-4)}`;
}

function authenticate(req: Request): string {
  const header = req.headers.get("authorization");
  if (!header) {
    throw invalidRequest(
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      { status: 401 },
    );
  }
  let key = "";
  const [scheme, value = ""] = header.split(/\s+/, 2) as [string, string?];
  if (scheme.toLowerCase() === "bearer") key = value;
  else if (scheme.toLowerCase() === "basic") {
    try {
      key = atob(value).split(":")[0] ?? "";
    } catch {
      key = "";
    }
  }
  if (/^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key)) return key;
  if (/^(sk|rk)_live_/.test(key)) {
    throw invalidRequest(
      `Invalid API Key provided: ${redactKey(key)}. The Stripe stand-in only accepts test-mode keys (sk_test_…).`,
      { status: 401 },
    );
  }
  throw invalidRequest(`Invalid API Key provided: ${redactKey(key)}`, { status: 401 });
}

export async function startStripeStandin(options: StripeStandinOptions = {}): Promise<StripeStandin> {
  const limits: StandinLimits = {
    maxObjects: DEFAULT_LIMITS.maxObjects,
    maxEvents: DEFAULT_LIMITS.maxEvents,
    maxDeliveries: 10_000,
    maxQueuedDeliveries: 10_000,
    maxIdempotencyKeys: 10_000,
    maxBodyBytes: 1 << 20,
    ...options.limits,
  };
  const log = options.log ?? ((line: string) => console.warn(`[stripe-standin] ${line}`));
  const apiVersion = options.apiVersion ?? Stripe.API_VERSION;
  const state = new StandinState({ maxObjects: limits.maxObjects, maxEvents: limits.maxEvents });
  const work = new WorkTracker();
  const faults = new Faults();
  const idempotency = new IdempotencyStore(limits.maxIdempotencyKeys);
  const pendingSleeps = new Set<() => void>();

  const dispatcher = new WebhookDispatcher(state, work, {
    url: undefined,
    secret: undefined,
    mode: parseDeliveryMode(options.delivery),
    retry: { ...DEFAULT_RETRY, ...options.retry },
    concurrency: options.deliveryConcurrency ?? 1,
    burstWindowMs: options.burstWindowMs ?? 25,
    maxDeliveries: limits.maxDeliveries,
    maxQueued: limits.maxQueuedDeliveries,
    log,
  });
  dispatcher.setEndpoint(options.webhookUrl, options.webhookSecret);

  const engine = new Engine(
    state,
    {
      onEvent: (event) => dispatcher.enqueue(event),
      schedule: (fn, ms) => work.schedule(fn, ms, (err) => log(`scheduled work failed: ${String(err)}`)),
      webhookConfigured: () => dispatcher.configured(),
    },
    { apiVersion, payouts: options.payouts ?? "auto", settleDelayMs: options.settleDelayMs ?? 100 },
  );

  /** A sleep that `stop()` cuts short. */
  const interruptibleSleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pendingSleeps.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, HANG_CAP_MS));
      pendingSleeps.add(done);
    });

  interface Outcome {
    status: number;
    body: string;
    store: boolean;
  }

  function execute(method: string, path: string, rawText: string, req: RequestInfo): Outcome {
    try {
      const raw = parseForm(rawText);
      const match = matchRoute(method, path);
      if (!match || "methodMismatch" in match) throw unrecognizedUrl(method, path);
      const result = match.route.handler({ ids: match.ids, raw, req, engine, state });
      return { status: result.status ?? 200, body: JSON.stringify(result.body, null, 2), store: true };
    } catch (err) {
      if (err instanceof StripeApiError) return { status: err.status, body: errorJson(err), store: err.storable };
      log(`internal error on ${method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return { status: 500, body: errorJson(apiError("An unexpected error occurred in the Stripe stand-in.")), store: false };
    }
  }

  function respond(outcome: { status: number; body: string }, headers: Record<string, string>): Response {
    return new Response(outcome.body, { status: outcome.status, headers: { "content-type": "application/json", ...headers } });
  }

  async function misbehave(fault: ActiveFault, headers: Record<string, string>): Promise<Response | null> {
    switch (fault.mode) {
      case "delay":
        await interruptibleSleep(fault.delayMs);
        return null;
      case "hang":
        await interruptibleSleep(fault.delayMs);
        return closeConnection();
      case "close":
        return closeConnection();
      case "500":
      case "error":
        return respond({ status: fault.status, body: JSON.stringify({ error: fault.error }, null, 2) }, headers);
    }
  }

  async function handleApi(req: Request, url: URL): Promise<Response> {
    const method = req.method.toUpperCase();
    const path = url.pathname;
    const requestId = newId("req");
    const started = Date.now();
    const stripeVersion = req.headers.get("stripe-version") ?? apiVersion;
    const headers: Record<string, string> = {
      "request-id": requestId,
      "stripe-version": stripeVersion,
      "cache-control": "no-cache, no-store",
      "access-control-allow-origin": "*",
    };
    const finish = (res: Response): Response => {
      if (options.logRequests) log(`${method} ${path} ${res.status} ${Date.now() - started}ms ${requestId}`);
      return res;
    };
    const fault = faults.take(method, path);
    if (fault && fault.when === "before") {
      const early = await misbehave(fault, headers);
      if (early) return finish(early);
    }
    try {
      const apiKey = authenticate(req);
      let rawText = url.search.startsWith("?") ? url.search.slice(1) : "";
      if (method === "POST") {
        const bodyText = await req.text();
        if (bodyText.length > limits.maxBodyBytes) throw invalidRequest("Request body too large.", { status: 413 });
        rawText = bodyText === "" ? rawText : rawText === "" ? bodyText : `${rawText}&${bodyText}`;
      }
      const key = method === "POST" ? req.headers.get("idempotency-key") : null;
      if (key !== null) headers["idempotency-key"] = key;
      const info: RequestInfo = { id: requestId, idempotency_key: key };
      if (key === null || key === "") {
        const outcome = execute(method, path, rawText, info);
        if (fault && fault.when === "after") {
          const late = await misbehave(fault, headers);
          if (late) return finish(late);
        }
        return finish(respond(outcome, headers));
      }
      if (key.length > 255) throw invalidRequest("Idempotency-Key must be at most 255 characters long.", { param: "Idempotency-Key" });
      const scope = `${apiKey}\u0000${req.headers.get("stripe-account") ?? ""}`;
      const fingerprint = fingerprintOf(parseForm(rawText));
      const claim = await idempotency.begin(scope, key, `${method} ${path}`, fingerprint);
      if (claim.kind === "replay") {
        const replay = respond(claim.response, { ...headers, "idempotent-replayed": "true", "original-request": claim.response.requestId });
        if (fault && fault.when === "after") {
          const late = await misbehave(fault, headers);
          if (late) return finish(late);
        }
        return finish(replay);
      }
      const outcome = execute(method, path, rawText, info);
      const stored: StoredResponse | null = outcome.store ? { status: outcome.status, body: outcome.body, requestId } : null;
      if (fault && fault.when === "after") {
        // The key stays claimed while the answer is late, so a concurrent retry waits for it.
        if (fault.mode === "delay") await interruptibleSleep(fault.delayMs);
        claim.complete(stored);
        const late = fault.mode === "delay" ? null : await misbehave(fault, headers);
        if (late) return finish(late);
        return finish(respond(outcome, headers));
      }
      claim.complete(stored);
      return finish(respond(outcome, headers));
    } catch (err) {
      if (err instanceof StripeApiError) return finish(respond({ status: err.status, body: errorJson(err) }, headers));
      log(`internal error on ${method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return finish(respond({ status: 500, body: errorJson(apiError("An unexpected error occurred in the Stripe stand-in.")) }, headers));
    }
  }

  let standin: StripeStandin;

  const server = Bun.serve({
    port: options.port ?? DEFAULT_PORT,
    hostname: options.hostname ?? DEFAULT_HOST,
    maxRequestBodySize: limits.maxBodyBytes,
    idleTimeout: 120,
    fetch: async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/_standin" || url.pathname.startsWith("/_standin/")) return handleControl(standin, req, url);
      if (url.pathname.startsWith("/v1/") || url.pathname === "/v1") return handleApi(req, url);
      return respond(
        { status: 404, body: errorJson(unrecognizedUrl(req.method.toUpperCase(), url.pathname)) },
        { "request-id": newId("req") },
      );
    },
    error: (err) => {
      log(`server error: ${err.stack ?? err.message}`);
      return respond({ status: 500, body: errorJson(apiError("An unexpected error occurred in the Stripe stand-in.")) }, {});
    },
  });

  const host = options.hostname ?? DEFAULT_HOST;
  const port = server.port ?? options.port ?? DEFAULT_PORT;
  let stopped = false;

  standin = {
    url: `http://${host}:${port}`,
    port,
    host,
    stripeConfig: { host, port, protocol: "http" },
    state,
    engine,
    apiVersion,
    events: (type) => state.events.values().filter((e) => type === undefined || e.type === type),
    deliveries: () => dispatcher.deliveries(),
    delivery: () => dispatcher.mode,
    setDelivery: (mode) => {
      const parsed = parseDeliveryMode(mode);
      dispatcher.setMode(parsed);
      return parsed;
    },
    setWebhook: (url, secret) => dispatcher.setEndpoint(url, secret ?? options.webhookSecret),
    webhookUrl: () => dispatcher.url,
    injectFault: (spec) => faults.add(spec),
    faults: () => faults.active(),
    clearFaults: () => faults.clear(),
    closeDispute: (id, status) => engine.resolveDispute(id, status, AUTOMATIC),
    openDispute: (chargeId, opts) => engine.openDispute(chargeId, opts),
    failRefund: (id, reason) => engine.failRefund(id, reason ?? "unknown", AUTOMATIC),
    payPayout: (id) => engine.payPayout(id, AUTOMATIC),
    failPayout: (id, code, message) => engine.failPayout(id, code, message, AUTOMATIC),
    resendEvent: (id) => {
      state.events.require(id);
      dispatcher.resend(id);
    },
    idle: (timeoutMs) => work.idle(timeoutMs),
    reset: () => {
      work.cancelTimers();
      dispatcher.reset();
      state.clear();
      engine.reset();
      idempotency.clear();
      faults.clear();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const wake of [...pendingSleeps]) wake();
      work.cancelTimers();
      dispatcher.reset();
      idempotency.clear();
      await server.stop(true);
    },
  };
  return standin;
}
