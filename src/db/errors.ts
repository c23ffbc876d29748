/**
 * Whether a database error means "the database is not there right now" (connection lost or refused,
 * server shutting down) rather than a bug. Such failures reach callers as 503 UNAVAILABLE: retry
 * with the same idempotency key.
 */
const DRIVER_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
]);

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  // SQLSTATE class 08 (connection exception) and 57P01..57P03 (admin shutdown, crash, cannot connect now).
  // 57014: statement timeout, 55P03: lock timeout (a stuck commit was cancelled and rolled back).
  return DRIVER_CODES.has(code) || code.startsWith("08") || /^57P0[1-3]$/.test(code) || code === "57014" || code === "55P03";
}
