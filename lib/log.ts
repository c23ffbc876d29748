import { redact, redactDeep } from "./redact";

/**
 * Structured JSON logs, one line each, filtered by LOG_LEVEL. Callers pass facts, not secrets:
 * errors are reduced to their message (never a stack, never a bound parameter), and every string
 * field goes through the redactor (lib/redact.ts) all the same.
 */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
type Level = Exclude<keyof typeof LEVELS, "silent">;

let threshold: number = LEVELS[(process.env.LOG_LEVEL as keyof typeof LEVELS) ?? "info"] ?? LEVELS.info;

export function setLogLevel(level: keyof typeof LEVELS): void {
  threshold = LEVELS[level];
}

/** Whether a line at `level` would be written: a caller on a hot path asks before building its fields. */
export function logs(level: Level): boolean {
  return LEVELS[level] >= threshold;
}

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold) return;
  // As `{ level, time, msg, ...redactDeep(fields) }`, field by field: the same line, without
  // copying the fields twice, and short strings that recur (methods, routes, callers) redacted once.
  const line: Record<string, unknown> = { level, time: new Date().toISOString(), msg };
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    const redacted = typeof value === "string" ? redactedText(value) : value === null || typeof value !== "object" ? value : redactDeep(value, 1);
    if (key === "__proto__") Object.defineProperty(line, key, { value: redacted, enumerable: true, writable: true, configurable: true });
    else line[key] = redacted;
  }
  const text = JSON.stringify(line);
  if (LEVELS[level] >= LEVELS.warn) console.error(text);
  else console.log(text);
}

/** The message of an error, for a log line. */
export function reason(error: unknown): string {
  return String((error as Error)?.message ?? error).slice(0, 500);
}

/**
 * `redact` of short strings, remembered when it leaves them as they are: it is a pure function,
 * and most of what is logged recurs (methods, routes, callers). Only strings with nothing to redact
 * are remembered (what they are is what the log shows anyway), so no secret is kept here. Two
 * generations of at most MEMO_MAX each: a full one becomes the old one, what is still asked for is
 * carried over, the rest is forgotten. Bounded whatever is logged.
 */
const MEMO_MAX = 512;
const MEMO_TEXT_MAX = 200;
let clean = new Set<string>();
let previous = new Set<string>();

function redactedText(text: string): string {
  if (text.length > MEMO_TEXT_MAX) return redact(text);
  if (clean.has(text)) return text;
  if (!previous.has(text)) {
    const out = redact(text);
    if (out !== text) return out;
  }
  if (clean.size >= MEMO_MAX) {
    previous = clean;
    clean = new Set();
  }
  clean.add(text);
  return text;
}
