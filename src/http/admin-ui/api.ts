/**
 * Every call the page makes: to this node's own origin only (checked here, and the CSP's
 * connect-src 'self' enforces it again), with the operator's token, never with cookies. Failures
 * arrive as RFC 9457 problems and become an ApiError carrying the problem's code.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
  }
}

type Query = Record<string, string | number | undefined | null>;

/** `/admin/withdrawals/{withdrawalId}/release` with its parameters filled in (each one encoded). */
export function fill(template: string, params: Record<string, string>): string {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
    return encodeURIComponent(value);
  });
}

export class Api {
  constructor(
    private readonly token: string,
    private readonly onUnauthenticated: () => void,
  ) {}

  get<T>(path: string, query: Query = {}): Promise<T> {
    return this.send<T>("GET", path, query);
  }

  /** A change: a fresh Idempotency-Key per call (a click is one intent; the node dedupes retries of it). */
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.send<T>("POST", path, {}, body);
  }

  private async send<T>(method: string, path: string, query: Query, body?: unknown): Promise<T> {
    const url = new URL(path, location.origin);
    if (url.origin !== location.origin) throw new Error("the dashboard talks to its own node only");
    for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: "application/json" };
    if (method === "POST") {
      headers["content-type"] = "application/json";
      headers["idempotency-key"] = crypto.randomUUID();
    }
    const res = await fetch(url, { method, headers, credentials: "omit", cache: "no-store", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const problem = (parsed ?? {}) as { code?: string; title?: string; detail?: string };
      if (res.status === 401) this.onUnauthenticated();
      throw new ApiError(res.status, problem.code ?? `HTTP_${res.status}`, problem.detail ?? problem.title ?? res.statusText);
    }
    return parsed as T;
  }
}

/** The API's reference, public like the page: which routes this node has (so buttons exist only for them). */
export async function openApi(): Promise<{ paths: Record<string, Record<string, OpenApiOperation>> }> {
  const res = await fetch(new URL("/openapi.json", location.origin), { credentials: "omit" });
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, "the API reference did not load");
  return (await res.json()) as { paths: Record<string, Record<string, OpenApiOperation>> };
}

export interface OpenApiOperation {
  operationId?: string;
  summary?: string;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  parameters?: { name?: string; in?: string; schema?: JsonSchema; $ref?: string }[];
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  description?: string;
  maxLength?: number;
  minLength?: number;
  $ref?: string;
}
