import { redactDeep } from "./redact";

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

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold) return;
  const line = JSON.stringify({ level, time: new Date().toISOString(), msg, ...redactDeep(fields) });
  if (LEVELS[level] >= LEVELS.warn) console.error(line);
  else console.log(line);
}

/** The message of an error, for a log line. */
export function reason(error: unknown): string {
  return String((error as Error)?.message ?? error).slice(0, 500);
}
