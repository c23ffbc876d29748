import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { databaseFailure, RETRY_AFTER_S } from "../../lib/db-errors";
import { replyOf } from "../../src/api/reply";
import { testServerUrl } from "../support/db";

/**
 * One table decides what every database failure means for a caller (lib/db-errors.ts): an outage
 * (503 UNAVAILABLE, retry after Retry-After) or a bug (500 INTERNAL). These are its decisions.
 */
const postgresError = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { name: "PostgresError", code });

/** Every class of SQLSTATE Postgres defines that is an error (00, 01 and 02 are not). */
const ERROR_CLASSES = ["03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22", "23", "24", "25", "26", "27", "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F", "40", "42", "44", "53", "54", "55", "57", "58", "72", "F0", "HV", "P0", "XX"];

describe("the SQLSTATE table", () => {
  test("decides every error class Postgres defines", () => {
    const undecided = ERROR_CLASSES.filter((c) => databaseFailure({ code: `${c}000` }) === undefined);
    expect(undecided).toEqual([]);
  });

  test("out of connections or resources, connection lost, shut down, cancelled, timed out, rolled back for a retry: unavailable", () => {
    const codes = [
      "53300", // too many connections (server, database or role)
      "53000", "53100", "53200", "53400", // insufficient resources, disk full, out of memory, configuration limit
      "08000", "08001", "08003", "08006", "08P01", // connection exceptions
      "57P01", "57P02", "57P03", "57P04", "57P05", // admin shutdown, crash, cannot connect now, database dropped, idle session
      "57014", // statement_timeout
      "55P03", // lock_timeout
      "40001", "40P01", "40003", // serialization failure, deadlock, completion unknown
      "25006", "25P03", // read-only transaction (a standby), idle-in-transaction timeout
      "28P01", "3D000", // the connection itself refused: wrong password, no such database
      "58030", // I/O error
    ];
    expect(codes.filter((code) => databaseFailure(postgresError(code)) !== "unavailable")).toEqual([]);
    const driver = ["CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT", "ECONNREFUSED", "ECONNRESET", "EPIPE"];
    expect(driver.filter((code) => databaseFailure({ code }) !== "unavailable")).toEqual([]);
  });

  test("a statement Postgres refuses for what it says: a bug", () => {
    const codes = [
      "42601", "42703", "42P01", "42501", // syntax, undefined column, undefined table, no privilege
      "23505", "23503", "23502", "23514", // unique, foreign key, not null, check
      "22P02", "22003", "22001", // bad text for a number, out of range, too long
      "25P02", "25001", // a statement in an aborted transaction, BEGIN inside one
      "40002", // integrity violation at commit
      "XX000", "XX001", "XX002", // internal error, data corrupted, index corrupted
      "P0001", "0A000", "54000", "55000", "21000",
    ];
    expect(codes.filter((code) => databaseFailure(postgresError(code)) !== "bug")).toEqual([]);
    expect(["UNDEFINED_VALUE", "NOT_TAGGED_CALL", "UNSAFE_TRANSACTION"].filter((code) => databaseFailure({ code }) !== "bug")).toEqual([]);
  });

  test("what did not come from the database is not decided here", () => {
    for (const error of [new Error("boom"), { code: "ENOENT" }, { code: "EPERM" }, { code: 53300 }, null, undefined, "53300"]) {
      expect(databaseFailure(error)).toBeUndefined();
    }
    // A class Postgres does not define, from Postgres itself: refused for what it says.
    expect(databaseFailure(postgresError("ZZ123"))).toBe("bug");
  });

  test("a real error from Postgres carries what the table reads: a SQLSTATE and the driver's error name", async () => {
    const sql = postgres(await testServerUrl(), { max: 1, onnotice: () => {} });
    try {
      const error = await sql`select * from no_such_table_anywhere`.then(() => undefined, (e: unknown) => e);
      expect(error).toMatchObject({ name: "PostgresError", code: "42P01" });
      expect(databaseFailure(error)).toBe("bug");
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe("what a caller hears", () => {
  test("an outage is 503 UNAVAILABLE with when to come back; a bug is 500 INTERNAL without", () => {
    const outage = replyOf(postgresError("53300"));
    expect(outage.status).toBe(503);
    expect(outage.body).toMatchObject({ code: "UNAVAILABLE", retryAfter: RETRY_AFTER_S });
    const bug = replyOf(postgresError("42703"));
    expect(bug.status).toBe(500);
    expect(bug.body.code).toBe("INTERNAL");
    expect(bug.body.retryAfter).toBeUndefined();
  });
});
