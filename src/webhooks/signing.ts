import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures, made the way Stripe makes them, so an app can verify them with the code it
 * already has for Stripe: the header `Coffer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">`, keyed by the endpoint's whole secret (`whsec_…`, as text). A new timestamp and
 * signature on every attempt; the body (and the event id in it) is the same on every attempt.
 */
export const SIGNATURE_HEADER = "Coffer-Signature";
/** How old (or how far ahead) a signed timestamp may be for `verifySignature` by default. */
export const DEFAULT_TOLERANCE_S = 300;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_CHARS = 40;

/** A new endpoint secret: `whsec_` and 40 letters and digits (~238 bits), unbiased. */
export function newSecret(): string {
  let out = "";
  while (out.length < SECRET_CHARS) {
    for (const b of crypto.getRandomValues(new Uint8Array(64))) {
      // Rejection sampling keeps every character equally likely.
      if (b < 248 && out.length < SECRET_CHARS) out += ALPHABET[b % 62];
    }
  }
  return `whsec_${out}`;
}

export function signatureOf(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

/** The header value for `body` signed at `nowMs`. */
export function signatureHeader(secret: string, body: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${signatureOf(secret, t, body)}`;
}

/**
 * What an app does with a delivery (and what the tests do): the header names one timestamp within
 * `toleranceS` of now, and one of its `v1` signatures is the HMAC of "<t>.<raw body>" under the
 * secret, compared in constant time. Verify the raw bytes as received, before parsing the JSON.
 */
export function verifySignature(rawBody: string, header: string | null | undefined, secret: string, { toleranceS = DEFAULT_TOLERANCE_S, nowMs = Date.now() } = {}): boolean {
  if (!header || header.length > 4_096) return false;
  const parts = header.split(",").map((p) => p.trim().split("=") as [string, string?]);
  const stamps = parts.filter(([k]) => k === "t").map(([, v]) => v ?? "");
  if (stamps.length !== 1 || !/^\d{1,12}$/.test(stamps[0]!)) return false;
  const t = Number(stamps[0]);
  if (Math.abs(Math.floor(nowMs / 1000) - t) > toleranceS) return false;
  const expected = Buffer.from(signatureOf(secret, t, rawBody), "hex");
  return parts
    .filter(([k, v]) => k === "v1" && v !== undefined && /^[0-9a-f]{64}$/.test(v))
    .some(([, v]) => timingSafeEqual(Buffer.from(v!, "hex"), expected));
}
