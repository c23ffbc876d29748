/**
 * How database failures reach callers (503 UNAVAILABLE with Retry-After, or 500 INTERNAL) is
 * decided by ONE table, per SQLSTATE class, in lib/db-errors.ts: the actors ask it too, and they
 * may not import src/.
 */
export { databaseFailure, isDatabaseUnavailable, RETRY_AFTER_S, unavailable, type DatabaseFailure } from "../../lib/db-errors";
