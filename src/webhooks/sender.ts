import { isIP } from "node:net";
import { checkUrlForm, resolveTarget, systemResolver, UrlRefused, type Resolver, type UrlPolicy } from "./ssrf";

/**
 * One POST of a signed event to an endpoint: the URL's host resolved and checked again now (see
 * ssrf.ts), the connection made to the address that was checked (the Host header and TLS name stay
 * the URL's, so certificates are verified as usual), redirects not followed, within a time limit,
 * and the receiver's body never read. The outcome is a status and an error class, nothing of what
 * the receiver said: a delivery log holds no one's data.
 */
export type ErrorClass = "timeout" | "connect" | "dns" | "address_refused" | "redirect" | "http_4xx" | "http_5xx" | "tls" | "too_large" | "network";

export interface Sent {
  ok: boolean;
  statusCode: number | null;
  latencyMs: number;
  error: ErrorClass | null;
}

export interface SendOptions {
  policy: UrlPolicy;
  timeoutMs: number;
  bodyMaxBytes: number;
  /** Aborts the attempt (the node is stopping): `post` then throws AbortedByCaller. */
  signal?: AbortSignal;
  resolve?: Resolver;
  /** Extra TLS settings (tests: a private CA). */
  tls?: { ca?: string };
}

/** The attempt was stopped by us (shutdown), not failed by the receiver. */
export class AbortedByCaller extends Error {}

export async function post(urlText: string, body: string, headers: Record<string, string>, options: SendOptions): Promise<Sent> {
  const started = performance.now();
  const done = (statusCode: number | null, error: ErrorClass | null): Sent => ({ ok: error === null, statusCode, latencyMs: Math.round(performance.now() - started), error });
  if (Buffer.byteLength(body) > options.bodyMaxBytes) return done(null, "too_large");

  let target: URL;
  let host: string;
  const send: RequestInit & { tls?: Record<string, unknown> } = { method: "POST", body, redirect: "manual" };
  const sendHeaders: Record<string, string> = { ...headers };
  try {
    const form = checkUrlForm(urlText, options.policy);
    target = new URL(form.url);
    host = form.host;
    const where = await resolveTarget(host, options.policy, options.resolve ?? systemResolver);
    if (where.kind === "unresolved") return done(null, "dns");
    if (where.kind === "public" && !isIP(host)) {
      // Connect to the address just checked; the request still names the host (Host header, TLS SNI and certificate).
      const address = where.addresses[0]!;
      sendHeaders.host = form.url.host;
      target.hostname = isIP(address) === 6 ? `[${address}]` : address;
      send.tls = { serverName: host };
      // A connection made for this name is never pooled and reused for another name at the same address.
      send.keepalive = false;
    }
  } catch (error) {
    if (error instanceof UrlRefused) return done(null, "address_refused");
    throw error;
  }
  if (options.tls?.ca) send.tls = { ...send.tls, ca: options.tls.ca };

  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  try {
    const res = await fetch(target, { ...send, headers: sendHeaders, signal });
    // Nothing of the answer is kept: its body is dropped unread.
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) return done(res.status, null);
    if (res.status >= 300 && res.status < 400) return done(res.status, "redirect");
    return done(res.status, res.status < 500 ? "http_4xx" : "http_5xx");
  } catch (error) {
    if (options.signal?.aborted) throw new AbortedByCaller("the attempt was stopped");
    if (timeout.aborted) return done(null, "timeout");
    return done(null, classOf(error));
  }
}

function classOf(error: unknown): ErrorClass {
  const code = String((error as { code?: unknown })?.code ?? "");
  const name = String((error as { name?: unknown })?.name ?? "");
  if (name === "TimeoutError") return "timeout";
  if (code === "ConnectionRefused" || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ConnectionClosed" || code === "EHOSTUNREACH" || code === "ENETUNREACH") return "connect";
  if (/TLS|CERT|SSL|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/i.test(code)) return "tls";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "DNSException") return "dns";
  return "network";
}
