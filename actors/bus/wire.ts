import type { BusKeys } from "./keys";
import type { ReplayGuard } from "./replay";

/**
 * How one node's message to another looks on NATS: one header line, then the body.
 *
 *   request: `c1 <kid> <sentAtMs> <nonce> <mac>\n<body>`, mac = HMAC(kid, c1 · subject · kid · sentAtMs · nonce · body)
 *   reply:   `r1 <kid> <mac>\n<body>`,                   mac = HMAC(kid, r1 · the request's nonce · body)
 *
 * The subject is signed, so a command for one wallet cannot be replayed onto another; the time
 * bounds how long a captured message is worth anything, and the nonce makes it good once. A reply
 * is bound to its request's nonce, so an old or foreign reply cannot stand in for the real one.
 */
export const BUS_PAYLOAD_MAX_BYTES = 256 * 1024;

export type Refusal = "malformed" | "unknown_key" | "bad_mac" | "expired" | "replay" | "busy" | "too_large";

export type Opened = { ok: true; body: string; nonce: string } | { ok: false; refusal: Refusal };

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const MAC = /^[A-Za-z0-9_-]{43}$/;
const MS = /^[0-9]{1,15}$/;

export function sealRequest(keys: BusKeys, subject: string, body: string, nowMs: number): { payload: string; nonce: string } {
  const nonce = crypto.randomUUID().replaceAll("-", "");
  const kid = keys.activeKid;
  const mac = keys.mac(requestText(subject, kid, nowMs, nonce, body));
  return { payload: `c1 ${kid} ${nowMs} ${nonce} ${mac}\n${body}`, nonce };
}

/** Checks a request's signature, age and freshness; never throws, whatever arrives. */
export function openRequest(
  keys: BusKeys,
  replay: ReplayGuard,
  subject: string,
  payload: Uint8Array,
  nowMs: number,
  maxAgeMs: number,
): Opened {
  if (payload.length > BUS_PAYLOAD_MAX_BYTES) return { ok: false, refusal: "too_large" };
  const text = new TextDecoder("utf-8", { fatal: false }).decode(payload);
  const newline = text.indexOf("\n");
  if (newline < 0) return { ok: false, refusal: "malformed" };
  const header = text.slice(0, newline).split(" ");
  const body = text.slice(newline + 1);
  if (header.length !== 5 || header[0] !== "c1") return { ok: false, refusal: "malformed" };
  const [, kid, sent, nonce, mac] = header as [string, string, string, string, string];
  if (!MS.test(sent) || !NONCE.test(nonce) || !MAC.test(mac)) return { ok: false, refusal: "malformed" };
  if (!keys.verify(kid, requestText(subject, kid, Number(sent), nonce, body), mac)) return { ok: false, refusal: keys.has(kid) ? "bad_mac" : "unknown_key" };
  if (Math.abs(nowMs - Number(sent)) > maxAgeMs) return { ok: false, refusal: "expired" };
  const seen = replay.admit(nonce, nowMs);
  if (seen !== "fresh") return { ok: false, refusal: seen === "replay" ? "replay" : "busy" };
  return { ok: true, body, nonce };
}

export function sealReply(keys: BusKeys, requestNonce: string, body: string): string {
  const kid = keys.activeKid;
  return `r1 ${kid} ${keys.mac(replyText(requestNonce, body))}\n${body}`;
}

/** The reply's body when it answers the request with this nonce and is signed by a node; else undefined. */
export function openReply(keys: BusKeys, requestNonce: string, payload: Uint8Array): string | undefined {
  if (payload.length > BUS_PAYLOAD_MAX_BYTES) return undefined;
  const text = new TextDecoder().decode(payload);
  const newline = text.indexOf("\n");
  if (newline < 0) return undefined;
  const header = text.slice(0, newline).split(" ");
  if (header.length !== 3 || header[0] !== "r1" || !MAC.test(header[2]!)) return undefined;
  const body = text.slice(newline + 1);
  return keys.verify(header[1]!, replyText(requestNonce, body), header[2]!) ? body : undefined;
}

function requestText(subject: string, kid: string, sentAtMs: number, nonce: string, body: string): string {
  return `c1\n${subject}\n${kid}\n${sentAtMs}\n${nonce}\n${body}`;
}

function replyText(requestNonce: string, body: string): string {
  return `r1\n${requestNonce}\n${body}`;
}
