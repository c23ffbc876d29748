/**
 * Redaction for anything that leaves the process as text (logs, error details): secrets and keys
 * are replaced outright; addresses, account numbers and card-like digit runs keep just enough to
 * recognise them (first and last few characters), never enough to use them.
 *
 * Order matters: whole secrets first (tokens, PEM blocks, API keys), then addresses, then digits.
 */
const RULES: [RegExp, (match: string, ...groups: string[]) => string][] = [
  // PEM private keys, whole block.
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, () => "[private key]"],
  // JWTs (header.payload.signature, base64url, header starts with {" → eyJ).
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, () => "[token]"],
  // Authorization header values.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, (_m, scheme) => `${scheme} [token]`],
  // Provider secrets: Stripe keys and webhook secrets, generic sk-/pk- style keys, Coffer API keys.
  [/\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}\b/g, () => "[secret]"],
  [/\bwhsec_[A-Za-z0-9+/=]{8,}\b/g, () => "[secret]"],
  [/\bcof_[A-Za-z0-9_]{16,}\b/g, () => "[secret]"],
  // password=..., secret: ..., api_key=... in free text or query strings.
  [/\b(password|passwd|secret|api[_-]?key|token|private[_-]?key)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi, (_m, name, sep) => `${name}${sep}[redacted]`],
  // 64+ hex characters (raw private keys, seeds); an EVM tx hash is public but indistinguishable.
  [/\b(?:0x)?[0-9a-fA-F]{64,}\b/g, () => "[secret]"],
  // EVM addresses.
  [/\b0x[0-9a-fA-F]{40}\b/g, (m) => `${m.slice(0, 6)}…${m.slice(-4)}`],
  // Bitcoin bech32 (bc1…, tb1…) and legacy/P2SH base58 addresses.
  [/\b(?:bc|tb)1[02-9ac-hj-np-z]{11,71}\b/gi, (m) => `${m.slice(0, 6)}…${m.slice(-4)}`],
  [/\b[13mn2][a-km-zA-HJ-NP-Z1-9]{25,34}\b/g, (m) => `${m.slice(0, 4)}…${m.slice(-4)}`],
  // Solana addresses (base58, 32–44 characters).
  [/\b[1-9A-HJ-NP-Za-km-z]{32,44}\b/g, (m) => `${m.slice(0, 4)}…${m.slice(-4)}`],
  // Long digit runs (accounts, cards, phone numbers), spaces or dashes allowed: keep the last 4.
  // Not inside a longer word or id (a UUID's digit groups are left alone).
  [/(?<![\w-])\d(?:[ -]?\d){8,}(?![\w-])/g, (m) => `****${m.replace(/\D/g, "").slice(-4)}`],
];

export function redact(text: string): string {
  let out = text;
  for (const [pattern, replace] of RULES) out = out.replace(pattern, replace as (substring: string, ...args: string[]) => string);
  return out;
}

/** Redact every string inside a plain value (for structured log fields). */
export function redactDeep<T>(value: T, depth = 0): T {
  if (typeof value === "string") return redact(value) as T;
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1)) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, depth + 1)])) as T;
}
