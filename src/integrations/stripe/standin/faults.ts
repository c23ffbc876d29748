import type { StripeErrorBody } from "./errors";

/**
 * The fault switch: the next `count` API requests (optionally only those whose path starts with
 * `path` and whose method is `method`) misbehave, for testing what Coffer does when Stripe is down.
 *
 * - `500`: answer 500 `api_error`.
 * - `close`: drop the connection without an answer (the SDK sees ECONNRESET → StripeConnectionError).
 * - `hang`: answer nothing for `delayMs` (default 30 s), then drop the connection (client timeouts).
 * - `delay`: answer normally, `delayMs` (default 1 s) late.
 * - `error`: answer `status` with `error` (default 429 `rate_limit_error`).
 *
 * `when: "before"` (default) misbehaves before Stripe does anything, so nothing happened;
 * `when: "after"` performs the request first (objects created, events sent, the answer stored for
 * its idempotency key) and then misbehaves: the "Stripe did it but we never heard" case.
 */
export type FaultMode = "500" | "close" | "hang" | "delay" | "error";

export interface FaultSpec {
  mode: FaultMode;
  count?: number;
  path?: string;
  method?: string;
  when?: "before" | "after";
  delayMs?: number;
  status?: number;
  error?: Partial<StripeErrorBody>;
}

export interface ActiveFault {
  id: number;
  mode: FaultMode;
  remaining: number;
  path: string | null;
  method: string | null;
  when: "before" | "after";
  delayMs: number;
  status: number;
  error: StripeErrorBody;
}

const MODES: FaultMode[] = ["500", "close", "hang", "delay", "error"];
const MAX_FAULTS = 100;

export function parseFault(spec: Record<string, unknown>): FaultSpec {
  const mode = String(spec.mode ?? "");
  if (!MODES.includes(mode as FaultMode)) throw new Error(`fault mode must be one of ${MODES.join(", ")}`);
  const when = spec.when === undefined ? "before" : String(spec.when);
  if (when !== "before" && when !== "after") throw new Error('fault "when" must be "before" or "after"');
  const num = (v: unknown, name: string): number | undefined => {
    if (v === undefined || v === "") return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`fault ${name} must be a non-negative integer`);
    return n;
  };
  return {
    mode: mode as FaultMode,
    count: num(spec.count, "count"),
    path: spec.path === undefined ? undefined : String(spec.path),
    method: spec.method === undefined ? undefined : String(spec.method),
    when,
    delayMs: num(spec.delayMs ?? spec.delay_ms, "delayMs"),
    status: num(spec.status, "status"),
    error: typeof spec.error === "object" && spec.error !== null ? (spec.error as Partial<StripeErrorBody>) : undefined,
  };
}

export class Faults {
  private list: ActiveFault[] = [];
  private nextId = 1;

  add(spec: FaultSpec): ActiveFault {
    const defaultDelay = spec.mode === "hang" ? 30_000 : 1_000;
    const fault: ActiveFault = {
      id: this.nextId++,
      mode: spec.mode,
      remaining: Math.max(1, spec.count ?? 1),
      path: spec.path ?? null,
      method: spec.method ? spec.method.toUpperCase() : null,
      when: spec.when ?? "before",
      delayMs: spec.delayMs ?? defaultDelay,
      status: spec.status ?? (spec.mode === "error" ? 429 : 500),
      error: {
        type: spec.error?.type ?? (spec.mode === "error" ? "rate_limit_error" : "api_error"),
        message:
          spec.error?.message ??
          (spec.mode === "error"
            ? "Request rate limit exceeded (injected by the Stripe stand-in)."
            : "An unknown error occurred (injected by the Stripe stand-in)."),
        ...(spec.error?.code ? { code: spec.error.code } : spec.mode === "error" ? { code: "rate_limit" } : {}),
        ...(spec.error?.param ? { param: spec.error.param } : {}),
      },
    };
    this.list.push(fault);
    if (this.list.length > MAX_FAULTS) this.list.shift();
    return fault;
  }

  clear(): void {
    this.list = [];
  }

  active(): ActiveFault[] {
    return this.list.map((f) => ({ ...f }));
  }

  /** The first fault matching this request, with one use taken from it. */
  take(method: string, path: string): ActiveFault | undefined {
    const fault = this.list.find((f) => (f.method === null || f.method === method) && (f.path === null || path.startsWith(f.path)));
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining <= 0) this.list = this.list.filter((f) => f !== fault);
    return { ...fault };
  }
}
