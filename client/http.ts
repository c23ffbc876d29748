import { pathParams } from "./names";
import type { Answer, Attempt, Transport } from "./types";

export interface HttpTransportOptions {
  /** Where the node answers: `https://coffer.example.com` (no trailing path). */
  baseUrl: string;
  /** The fetch to use (default: the global one), e.g. one with a proxy or a test double. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Follow the nodes' `Coffer-Owner` hints to any port on the base URL's own host (same scheme):
   * a wallet's later requests go straight to the node that owns it. Default false.
   */
  followOwnerHints?: boolean;
  /**
   * Origins a hint may send requests (and so your token or API key) to, e.g.
   * `["https://node-a.coffer.example.com", "https://node-b.coffer.example.com"]`. A hint naming any
   * other origin is ignored. Giving the list turns hints on.
   */
  ownerHintOrigins?: string[];
  /** Wallets and chamas whose owner is remembered at most (least recently used forgotten first; default 10,000). */
  ownerHintsMax?: number;
}

/** The header a node adds to an answer it had to forward to the owner of the path's wallet or chama. */
export const OWNER_HEADER = "coffer-owner";
const DEFAULT_OWNER_HINTS_MAX = 10_000;
/** The answer a node gives a request that reached the wrong node (HTTP 421 Misdirected Request). */
const MISDIRECTED = 421;

/**
 * REST: path parameters go into the path, the other fields into the query (GET) or a JSON body
 * (POST), the headers as they are. A response counts as an answer only once its body is in: a
 * connection that drops before that is no answer, and the call is retried with the same key.
 *
 * Owner hints (when turned on, for trusted origins only): a node that forwarded a wallet's command
 * to its owner names the owner in `Coffer-Owner`; the wallet's later requests go there. When the
 * owner does not answer (connection refused or reset) or answers 421, the hint is forgotten and
 * the same attempt goes to `baseUrl`; after an attempt that timed out there, the next attempt does.
 */
export function httpTransport(options: HttpTransportOptions): Transport {
  const base = options.baseUrl.replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
  const hints = ownerHintsOf(base, options);
  const once = async (origin: string, attempt: Attempt, signal: AbortSignal): Promise<{ answer: Answer; owner: string | null }> => {
    const { url, body } = requestOf(origin, attempt);
    const res = await fetchImpl(url, {
      method: attempt.route.method,
      headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...attempt.headers },
      body,
      signal,
    });
    const text = await res.text();
    return {
      answer: {
        status: res.status,
        body: parsed(text),
        retryAfter: retryAfterSeconds(res.headers.get("retry-after")),
        requestId: res.headers.get("x-request-id") ?? undefined,
      },
      owner: res.headers.get(OWNER_HEADER),
    };
  };
  return {
    async send(attempt: Attempt): Promise<Answer> {
      const timeout = AbortSignal.timeout(attempt.timeoutMs);
      const signal = attempt.signal ? AbortSignal.any([attempt.signal, timeout]) : timeout;
      const target = hints ? ownedBy(attempt) : undefined;
      const hinted = target === undefined ? undefined : hints!.get(target);
      if (hinted !== undefined) {
        try {
          const { answer, owner } = await once(hinted, attempt, signal);
          if (answer.status !== MISDIRECTED) {
            hints!.learn(target!, owner);
            return answer;
          }
          hints!.forget(target!);
        } catch (error) {
          hints!.forget(target!);
          // Out of time (or given up), or a change that carries no key and so must not be sent
          // twice: the core decides; its next attempt goes to the base URL.
          if (signal.aborted || (attempt.route.method !== "GET" && attempt.headers["Idempotency-Key"] === undefined)) throw error;
        }
      }
      const { answer, owner } = await once(base, attempt, signal);
      if (target !== undefined) hints!.learn(target, owner);
      return answer;
    },
  };
}

/** The wallet or chama a request is about (its path parameter), which is what hints are kept by. */
function ownedBy(attempt: Attempt): string | undefined {
  const param = attempt.route.path.includes("/:walletId") ? "walletId" : attempt.route.path.includes("/:chamaId") ? "chamaId" : undefined;
  const id = param === undefined ? undefined : attempt.input[param];
  return typeof id === "string" ? id : undefined;
}

/** Owners remembered per wallet or chama (bounded, least recently used forgotten), for trusted origins only. */
interface OwnerHintCache {
  get(id: string): string | undefined;
  /** Remember the owner an answer named (a trusted origin other than the base URL), if it named one. */
  learn(id: string, header: string | null): void;
  forget(id: string): void;
}

function ownerHintsOf(base: string, options: HttpTransportOptions): OwnerHintCache | undefined {
  const allowed = new Set((options.ownerHintOrigins ?? []).map(originOf).filter((o): o is string => o !== undefined));
  if (!options.followOwnerHints && !allowed.size) return undefined;
  const home = new URL(base);
  const baseOrigin = home.origin;
  const trusted = (origin: string): boolean => {
    if (allowed.has(origin)) return true;
    if (!options.followOwnerHints) return false;
    const url = new URL(origin);
    return url.protocol === home.protocol && url.hostname === home.hostname;
  };
  const max = Math.max(1, Math.floor(options.ownerHintsMax ?? DEFAULT_OWNER_HINTS_MAX));
  const owners = new Map<string, string>();
  return {
    get(id) {
      const origin = owners.get(id);
      if (origin === undefined) return undefined;
      // Most recently used goes last; the first entries are the first forgotten.
      owners.delete(id);
      owners.set(id, origin);
      return origin;
    },
    learn(id, header) {
      if (header === null) return;
      const origin = originOf(header);
      if (origin === undefined || !trusted(origin)) return;
      owners.delete(id);
      if (origin === baseOrigin) return;
      owners.set(id, origin);
      if (owners.size > max) owners.delete(owners.keys().next().value!);
    },
    forget(id) {
      owners.delete(id);
    },
  };
}

/** An http(s) URL's origin when it is a bare origin (no user, path, query or fragment); else undefined. */
function originOf(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.username || url.password || (url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return undefined;
  return url.origin;
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
