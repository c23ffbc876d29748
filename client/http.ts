import { pathParams } from "./names";
import type { Answer, Attempt, Transport } from "./types";

export interface HttpTransportOptions {
  /** Where the node answers: `https://coffer.example.com` (no trailing path). */
  baseUrl: string;
  /** The fetch to use (default: the global one), e.g. one with a proxy or a test double. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
}

/**
 * REST: path parameters go into the path, the other fields into the query (GET) or a JSON body
 * (POST), the headers as they are. A response counts as an answer only once its body is in: a
 * connection that drops before that is no answer, and the call is retried with the same key.
 */
export function httpTransport(options: HttpTransportOptions): Transport {
  const base = options.baseUrl.replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
  return {
    async send(attempt: Attempt): Promise<Answer> {
      const { url, body } = requestOf(base, attempt);
      const timeout = AbortSignal.timeout(attempt.timeoutMs);
      const res = await fetchImpl(url, {
        method: attempt.route.method,
        headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...attempt.headers },
        body,
        signal: attempt.signal ? AbortSignal.any([attempt.signal, timeout]) : timeout,
      });
      const text = await res.text();
      return {
        status: res.status,
        body: parsed(text),
        retryAfter: retryAfterSeconds(res.headers.get("retry-after")),
        requestId: res.headers.get("x-request-id") ?? undefined,
      };
    },
  };
}

function requestOf(base: string, { route, input }: Attempt): { url: string; body: string | undefined } {
  const rest: Record<string, unknown> = { ...input };
  let path = route.path;
  for (const param of pathParams(route.path)) {
    path = path.replace(`:${param}`, encodeURIComponent(String(rest[param])));
    delete rest[param];
  }
  if (route.method === "POST") return { url: base + path, body: JSON.stringify(rest) };
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(rest)) {
    if (value !== undefined && value !== null) query.set(name, String(value));
  }
  const qs = query.toString();
  return { url: base + path + (qs ? `?${qs}` : ""), body: undefined };
}

function parsed(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Retry-After in seconds: a number of seconds or an HTTP date. */
export function retryAfterSeconds(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^[0-9]+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
