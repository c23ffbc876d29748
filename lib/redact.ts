/**
 * Redaction for anything that leaves the process as text (logs, error details): secrets and keys
 * are replaced outright; addresses, account numbers and card-like digit runs keep just enough to
 * recognise them (first and last few characters), never enough to use them.
 *
 * What came from outside is redacted, not what Coffer wrote: log fields go through `redact` whole;
 * an error's detail is our sentence, so only the caller's text it quotes goes through `quote`
 * (where it is quoted), and the whole gets `redactSecrets` on its way out. A maximum or an id of
 * ours is never mangled into `****0000.00`.
 *
 * Order matters: whole secrets first (tokens, PEM blocks, API keys), then addresses, then digits.
 */
type Rule = [RegExp, (match: string, ...groups: string[]) => string];

/** Secrets, replaced outright. None of these patterns can match a sentence, a number or an id of ours. */
const SECRET_RULES: Rule[] = [
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
];

/** Secrets by their name, then identifiers that could be someone's (addresses, account and card numbers): only their ends survive. */
const IDENTIFIER_RULES: Rule[] = [
  // password=..., secret: ..., api_key=... in free text or query strings. Not among the secret rules:
  // our own messages name fields (`body.destination.token: …`) in just this form.
  [/\b(password|passwd|secret|api[_-]?key|token|private[_-]?key)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi, (_m, name, sep) => `${name}${sep}[redacted]`],
  // Lightning invoices (BOLT-11): a bearer request to be paid, dropped whole. Before anything that
  // could match a piece of one.
  [/\bln(?:bc|tb|bcrt|tbs|sb)[0-9a-z]*1[02-9ac-hj-np-z]{100,}\b/gi, () => "[lightning invoice]"],
  // TON user-friendly addresses: 48 base64(url) characters, tag and workchain first (EQ…, UQ…, kQ…, 0Q…, Ef…).
  [/\b[EUk0][Qf][A-Za-z0-9_+/-]{46}(?![A-Za-z0-9_+/=-])/g, (m) => `${m.slice(0, 6)}…${m.slice(-4)}`],
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

const RULES: Rule[] = [...SECRET_RULES, ...IDENTIFIER_RULES];

function apply(rules: Rule[], text: string): string {
  let out = text;
  for (const [pattern, replace] of rules) out = out.replace(pattern, replace as (substring: string, ...args: string[]) => string);
  return out;
}

/** For text that came from outside, whole (log fields, a provider's answer): secrets go, identifiers keep their ends. */
export function redact(text: string): string {
  return apply(RULES, text);
}

/**
 * For text Coffer wrote itself (an error's detail): only secrets, which no sentence of ours holds,
 * so our own limits and ids ("the maximum of 1000000000.00") come out exactly as written. Whatever
 * such text quotes from a caller went through `quote` where it was quoted.
 */
export function redactSecrets(text: string): string {
  return apply(SECRET_RULES, text);
}

/**
 * A caller's text quoted inside one of our messages (an unknown field's name, a member id): clipped
 * to `max` characters and redacted on the spot, so only that part is masked and the message around
 * it stays exact.
 */
export function quote(text: string, max = 64): string {
  return redact(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** Redact every string inside a plain value (for structured log fields). */
export function redactDeep<T>(value: T, depth = 0): T {
  if (typeof value === "string") return redact(value) as T;
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1)) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, depth + 1)])) as T;
}
