import { refusal, type Reply } from "./errors";

/**
 * What a failure from Postgres (or from the driver on the way to it) means for the caller, decided
 * once, here, for every layer: the actors (a failed batch) and the API (a failed read or service
 * check) both ask this table. It lives in the leaf library because actors may not import src/.
 *
 * - `unavailable`: nothing was done, or it was rolled back, or its fate is unknown but a retry with
 *   the same idempotency key is safe (exactly once either way). The database is not there for us
 *   right now; it will be. → 503 UNAVAILABLE with Retry-After, logged as a warning.
 * - `bug`: Postgres answered and refused what we asked. Asking again gets the same answer, so
 *   a retry does not help and someone must look. → 500 INTERNAL, logged as an error.
 *
 * An error that is neither a SQLSTATE nor a driver code below is not a database failure at all.
 */
export type DatabaseFailure = "unavailable" | "bug";

/** How long a caller should wait before trying again after a 503 (seconds; Retry-After). */
export const RETRY_AFTER_S = 1;

/**
 * By SQLSTATE class (the first two characters), then by exact code where one code of a class
 * differs from the rest. Every class Postgres defines is here, so a new failure is never decided
 * by accident. https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const BY_CLASS: Record<string, DatabaseFailure> = {
  // 00 successful completion, 01 warning, 02 no data: never thrown as errors.
  // 03 SQL statement not yet complete; 09 triggered action exception; 0A feature not supported;
  // 0B invalid transaction initiation; 0F locator; 0L invalid grantor; 0P invalid role
  // specification; 0Z diagnostics; 20 case not found; 21 cardinality violation: our SQL is wrong.
  "03": "bug",
  "09": "bug",
  "0A": "bug",
  "0B": "bug",
  "0F": "bug",
  "0L": "bug",
  "0P": "bug",
  "0Z": "bug",
  "20": "bug",
  "21": "bug",
  // 08 connection exception: could not connect, the connection broke, the server refused the
  // session. Nothing more happens on it; a new connection later will do.
  "08": "unavailable",
  // 22 data exception (bad number, text in a bigint, overflow): the edges validate every input
  // (zod, then the services), so one reaching Postgres means a check is missing.
  "22": "bug",
  // 23 integrity constraint violation: the conflicts we expect (a taken idempotency key, an
  // existing wallet) are caught where they happen and turned into answers; one arriving here was
  // not expected.
  "23": "bug",
  // 24 invalid cursor state; 26 invalid statement name; 27 triggered data change violation;
  // 2B dependent privilege descriptors; 2D invalid transaction termination; 2F SQL routine
  // exception; 34 invalid cursor name; 38 external routine exception; 39 external routine
  // invocation; 3B savepoint exception; 3F invalid schema name; 44 with check option: all ours.
  "24": "bug",
  "26": "bug",
  "27": "bug",
  "2B": "bug",
  "2D": "bug",
  "2F": "bug",
  "34": "bug",
  "38": "bug",
  "39": "bug",
  "3B": "bug",
  "3F": "bug",
  "44": "bug",
  // 25 invalid transaction state (a statement in an aborted transaction, a nested BEGIN): our
  // transaction handling is wrong. Two exceptions below: 25006 and 25P03.
  "25": "bug",
  // 28 invalid authorization (wrong password, no such role) and 3D invalid catalog name (no such
  // database) refuse the connection itself: nothing was done, and the node cannot reach the
  // ledger until an operator fixes its configuration. The caller's request is fine: 503, so load
  // balancers send it elsewhere; the log line says why.
  "28": "unavailable",
  "3D": "unavailable",
  // 40 transaction rollback: a serialization failure (40001) or deadlock (40P01) rolled the
  // whole transaction back; the same transaction again succeeds. 40003: the statement's fate is
  // unknown, which a retry with the same idempotency key resolves. 40002 below.
  "40": "unavailable",
  // 42 syntax error or access rule violation (undefined table or column, no privilege): a bug or a
  // broken deployment; asking again fails the same way.
  "42": "bug",
  // 53 insufficient resources: too many connections (53300, for the server, the database or the
  // role), out of memory, disk full, a configuration limit. The server sheds load; it passes.
  "53": "unavailable",
  // 54 program limit exceeded (statement too complex, too many arguments): our statement.
  "54": "bug",
  // 55 object not in prerequisite state: mostly ours (55000, 55006 object in use). 55P03 below.
  "55": "bug",
  // 57 operator intervention: the statement was cancelled (57014: statement_timeout or a cancel
  // request; rolled back), the server is shutting down or restarting (57P01 admin, 57P02 crash),
  // not accepting connections yet (57P03), the database was dropped (57P04), the session idled
  // out (57P05). Nothing committed; later, elsewhere, it works.
  "57": "unavailable",
  // 58 system error (I/O error, a file missing under the server): the server's machine failed it.
  "58": "unavailable",
  // 72 snapshot too old: the statement ran too long against old rows; a fresh attempt works.
  "72": "unavailable",
  // F0 configuration file error; HV foreign data wrapper; P0 PL/pgSQL (our functions raise
  // P0001 for taken keys and fencing, which the stores catch; anything else is a bug).
  F0: "bug",
  HV: "bug",
  P0: "bug",
  // XX internal error (XX000), data corrupted (XX001), index corrupted (XX002): retrying will not
  // mend it, and someone must look now.
  XX: "bug",
};

const BY_CODE: Record<string, DatabaseFailure> = {
  // 25006 read-only SQL transaction: we reached a standby, or the server was made read-only for
  // maintenance or after a fail-over. Writes work again once the primary is back.
  "25006": "unavailable",
  // 25P03 idle-in-transaction session timeout: the server ended our session; a new one will do.
  "25P03": "unavailable",
  // 40002 integrity constraint violation at commit (a deferred constraint): as class 23.
  "40002": "bug",
  // 55P03 lock not available (lock_timeout): a commit waited too long behind someone else's lock
  // (an operator's open transaction, a migration) and was rolled back.
  "55P03": "unavailable",
};

/** postgres.js's own codes (not SQLSTATEs) and the socket errors it passes on. */
const DRIVER_CODES: Record<string, DatabaseFailure> = {
  CONNECTION_CLOSED: "unavailable",
  CONNECTION_ENDED: "unavailable",
  CONNECTION_DESTROYED: "unavailable",
  CONNECT_TIMEOUT: "unavailable",
  ECONNRESET: "unavailable",
  ECONNREFUSED: "unavailable",
  ECONNABORTED: "unavailable",
  EPIPE: "unavailable",
  ETIMEDOUT: "unavailable",
  EHOSTUNREACH: "unavailable",
  ENETUNREACH: "unavailable",
  ENOTFOUND: "unavailable",
  EAI_AGAIN: "unavailable",
  // Ours (actors/store-errors.ts): a row read back absent that a second read finds. Not trusted; retried.
  READ_OUT_OF_STEP: "unavailable",
  // Misuse of the driver: our code.
  UNDEFINED_VALUE: "bug",
  NOT_TAGGED_CALL: "bug",
  MAX_PARAMETERS_EXCEEDED: "bug",
  UNSAFE_TRANSACTION: "bug",
  COPY_IN_PROGRESS: "bug",
  MESSAGE_NOT_SUPPORTED: "bug",
  // The server could not prove who it is, or asked for an authentication we cannot do: a
  // deployment problem, like class 28.
  SASL_SIGNATURE_MISMATCH: "unavailable",
  AUTH_TYPE_NOT_IMPLEMENTED: "unavailable",
};

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The verdict for a failure, or undefined when it did not come from the database. */
export function databaseFailure(error: unknown): DatabaseFailure | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  const driver = DRIVER_CODES[code];
  if (driver) return driver;
  if (!SQLSTATE.test(code)) return undefined;
  const decided = BY_CODE[code] ?? BY_CLASS[code.slice(0, 2)];
  if (decided) return decided;
  // A class Postgres does not define (an extension's own) is still the server refusing us; a
  // five-letter code on anything else (EPERM, EBUSY) is no SQLSTATE at all.
  return (error as { name?: unknown }).name === "PostgresError" ? "bug" : undefined;
}

/** The database is not there for us right now; the caller may retry with the same idempotency key. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return databaseFailure(error) === "unavailable";
}

/** The answer for `isDatabaseUnavailable`: 503 UNAVAILABLE, and when to come back. */
export function unavailable(detail = "the ledger is unavailable; retry with the same idempotency key"): Reply {
  return refusal("UNAVAILABLE", detail, { retryAfter: RETRY_AFTER_S });
}
