import { CofferApiError, CofferNetworkError } from "./errors";
import { camelPath, pathParams } from "./names";
import { ROUTES } from "./routes";
import type { Answer, CallOptions, ClientOptions, CofferClient, OperationName, OperationTree, Route, Transport } from "./types";

/**
 * The client whatever the transport: one method per operation of the table, and the retry rules.
 *
 * A call of an operation that changes something makes ONE Idempotency-Key (or takes the caller's)
 * and sends it on every attempt, so however many attempts reach the node, the change happens once.
 * An attempt is repeated after no answer (connection refused or reset, attempt timeout) and after
 * 503, 502, 504 or 429 (waiting at least Retry-After); never after another answer. Attempts are
 * bounded (`maxAttempts`), spaced by a doubling pause with jitter, and all end by `deadlineMs`.
 */
export const DEFAULTS = {
  maxAttempts: 5,
  attemptTimeoutMs: 10_000,
  deadlineMs: 30_000,
  retryDelayMs: 100,
  maxRetryDelayMs: 2_000,
  maxRetryAfterMs: 10_000,
} as const;

/** Statuses that say "not done, or not known to be done: ask again with the same key". */
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
/** Sanity bounds on what callers may configure. */
const MAX_ATTEMPTS_LIMIT = 20;

type Settings = Required<Pick<ClientOptions, keyof typeof DEFAULTS>>;

export function createCofferClient(transport: Transport, options: ClientOptions = {}): CofferClient {
  const settings: Settings = { ...DEFAULTS, ...definedOnly(options) };
  const call = (name: OperationName, input?: Record<string, unknown>, callOptions: CallOptions = {}) =>
    callWithRetries(transport, options, settings, name, input ?? {}, callOptions);
  return Object.assign(treeOf(call), { call }) as unknown as CofferClient;
}

async function callWithRetries(
  transport: Transport,
  options: ClientOptions,
  settings: Settings,
  name: OperationName,
  input: Record<string, unknown>,
  call: CallOptions,
): Promise<unknown> {
  const route: Route | undefined = (ROUTES as Record<string, Route>)[name];
  if (!route) throw new TypeError(`no operation is named ${JSON.stringify(name)}`);
  checkPathParams(name, route, input);
  const maxAttempts = Math.min(Math.max(1, Math.floor(call.maxAttempts ?? settings.maxAttempts)), MAX_ATTEMPTS_LIMIT);
  const attemptTimeoutMs = call.attemptTimeoutMs ?? settings.attemptTimeoutMs;
  const deadline = performance.now() + (call.deadlineMs ?? settings.deadlineMs);
  const key = route.idempotent ? (call.idempotencyKey ?? crypto.randomUUID()) : undefined;
  // A change without a key could happen twice if repeated after no answer; reads and keyed changes may be.
  const mayRepeat = route.method === "GET" || key !== undefined;

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    call.signal?.throwIfAborted();
    const headers = await headersFor(options, key);
    const timeoutMs = Math.max(1, Math.min(attemptTimeoutMs, deadline - performance.now()));
    let answer: Answer | undefined;
    let noAnswer: unknown;
    try {
      answer = await transport.send({ name, route, input, headers, timeoutMs, signal: call.signal });
    } catch (cause) {
      if (call.signal?.aborted) throw call.signal.reason;
      noAnswer = cause;
    }
    if (answer && answer.status < 400) return answer.body;
    const failure = answer ? CofferApiError.fromAnswer(name, answer, key, attempt) : new CofferNetworkError(name, key, attempt, noAnswer);
    const repeat = answer ? RETRY_STATUSES.has(answer.status) && (mayRepeat || answer.status === 429) : mayRepeat;
    if (!repeat || attempt >= maxAttempts) throw failure;
    const waitMs = pauseBefore(attempt + 1, failure instanceof CofferApiError ? failure.retryAfter : undefined, settings);
    if (waitMs === undefined || performance.now() + waitMs >= deadline) throw failure;
    await sleep(waitMs, call.signal);
  }
  throw new Error("unreachable: the last attempt returns or throws");
}

/**
 * The pause before attempt n: the doubling backoff with jitter, or Retry-After if longer. A
 * Retry-After beyond `maxRetryAfterMs` gives up (undefined): the caller hears the error and when.
 */
function pauseBefore(attempt: number, retryAfterSeconds: number | undefined, settings: Settings): number | undefined {
  const ceiling = Math.min(settings.maxRetryDelayMs, settings.retryDelayMs * 2 ** (attempt - 2));
  const backoffMs = ceiling / 2 + Math.random() * (ceiling / 2);
  if (retryAfterSeconds === undefined) return backoffMs;
  const retryAfterMs = retryAfterSeconds * 1000;
  if (retryAfterMs > settings.maxRetryAfterMs) return undefined;
  return Math.max(backoffMs, retryAfterMs);
}

async function headersFor(options: ClientOptions, key: string | undefined): Promise<Record<string, string>> {
  const headers: Record<string, string> = {};
  const token = typeof options.token === "function" ? await options.token() : options.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.apiKey) headers["X-Api-Key"] = options.apiKey;
  if (key !== undefined) headers["Idempotency-Key"] = key;
  return headers;
}

/** A missing path parameter is the caller's bug: said at once, never sent, never retried. */
function checkPathParams(name: string, route: Route, input: Record<string, unknown>): void {
  for (const param of pathParams(route.path)) {
    const value = input[param];
    if (typeof value !== "string" || value === "") throw new TypeError(`${name} needs ${param} (a string)`);
  }
}

type Call = (name: OperationName, input?: Record<string, unknown>, options?: CallOptions) => Promise<unknown>;

/** The nested methods, built from the generated routes (client/generate-routes.ts checks the names nest). */
function treeOf(call: Call): OperationTree {
  const root: Record<string, unknown> = {};
  for (const name of Object.keys(ROUTES) as OperationName[]) {
    const parts = camelPath(name).split(".");
    let node = root;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts[parts.length - 1]!] = (input?: Record<string, unknown>, options?: CallOptions) => call(name, input, options);
  }
  return root as OperationTree;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
