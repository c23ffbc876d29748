import { expect } from "bun:test";
import type { ErrorCode } from "../../lib/errors";
import type { Db } from "../../lib/db";
import type { ApiResponse } from "../support/node";
import { expectProblem as expectAnyProblem } from "../support/problem";

/**
 * Everything a request could have written: every wallet's status, balances and version, every
 * withdrawal's and transfer's status, and the row counts of the append-only tables. "Nothing
 * written" means two footprints taken around a request are equal.
 */
export async function footprint(db: Db) {
  const [row] = await db`select
    (select coalesce(json_agg(json_build_object('id', id, 'status', status, 'posted', posted::text, 'held', held::text, 'version', version) order by id), '[]'::json) from wallets) as wallets,
    (select coalesce(json_agg(json_build_object('id', id, 'status', status) order by id), '[]'::json) from withdrawals) as withdrawals,
    (select coalesce(json_agg(json_build_object('id', id, 'status', status) order by id), '[]'::json) from transfers) as transfers,
    (select count(*) from journals)::int as journals, (select count(*) from postings)::int as postings,
    (select count(*) from events)::int as outbox, (select count(*) from idempotency_keys)::int as idempotency_keys`;
  // API keys arrived with migration 003; a database without them has none to change.
  const [{ present }] = (await db`select to_regclass('api_keys') is not null as present`) as unknown as [{ present: boolean }];
  const apiKeys = present
    ? (await db`select coalesce(json_agg(json_build_object('id', id, 'prefix', prefix, 'revoked', revoked_at, 'expires', expires_at) order by id), '[]'::json) as keys from api_keys`)[0]!.keys
    : [];
  return { ...row, apiKeys } as Record<string, unknown>;
}

/** The members of an RFC 9457 problem as Coffer writes it: nothing else may ride along. */
const PROBLEM_MEMBERS = ["type", "title", "status", "code", "detail", "instance"];

/** A problem+json answer with this status and code (test/support/problem.ts), exactly that media type, carrying no resource data. */
export function expectProblem(res: ApiResponse, status: number, code: ErrorCode): void {
  expectAnyProblem(res, status, code);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(Object.keys(res.body).filter((k) => !PROBLEM_MEMBERS.includes(k))).toEqual([]);
}
