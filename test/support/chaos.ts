import { expect } from "bun:test";
import type postgres from "postgres";
import { ADMIN, tokenFor, type As } from "./auth";
import { usd } from "./money";

/**
 * What the chaos suites (test/chaos/) share: callers with a client-side deadline, the killing of
 * database connections, a seeded mix of payments and transfers, and the checks every one of them
 * makes once the dust settles (no 500, each acknowledged payment in the ledger exactly once, the
 * verifier clean).
 */

/** One answer a caller heard; status 0: none (no answer within the deadline, or the connection failed). */
export interface Answer {
  status: number;
  body: any;
  /** How long it took, and when it came (Date.now()). */
  ms: number;
  at: number;
}

export interface TimedRequest {
  body?: unknown;
  key?: string;
  as?: As;
  timeoutMs: number;
  /**
   * What a failed connection is: with "no-answer" (a server being killed or restarted) it is status
   * 0 like a timeout; with "error" (the server must stay up) it fails the test.
   */
  connectionFailure: "no-answer" | "error";
}

export async function timedRequest(baseUrl: string, method: "GET" | "POST", path: string, o: TimedRequest): Promise<Answer> {
  const started = performance.now();
  const answer = (status: number, body: any): Answer => ({ status, body, ms: performance.now() - started, at: Date.now() });
  try {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { "content-type": "application/json", authorization: `Bearer ${await tokenFor(o.as ?? ADMIN)}`, ...(o.key ? { "idempotency-key": o.key } : {}) },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    return answer(res.status, await res.json());
  } catch (error) {
    if (o.connectionFailure === "error" && (error as Error).name !== "TimeoutError") throw error;
    return answer(0, { code: "NO_ANSWER" });
  }
}

export const isOk = (a: Answer | undefined) => a !== undefined && a.status >= 200 && a.status < 300;

/** Ends every connection to the test database but `admin`'s own (which is on another database); returns how many. */
export async function terminateBackends(admin: postgres.Sql, databaseUrl: string): Promise<number> {
  const name = new URL(databaseUrl).pathname.slice(1);
  const rows = await admin`select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
  return rows.filter((r) => r.ended).length;
}

/** One caller's payment or transfer, and every answer it heard (it retries with the same key). */
export interface WalletOp {
  kind: "payment" | "transfer";
  key: string;
  path: string;
  body: { amount: string; reference?: string; fromWalletId?: string; toWalletId?: string };
  walletId: string;
  sentAt: number;
  answers: Answer[];
}

export const lastAnswer = (op: { answers: Answer[] }) => op.answers[op.answers.length - 1]!;

/**
 * The next operation of a seeded mix: 60% payments of 0.01 to 5.00 from a random wallet, the rest
 * transfers of as much to another one. Payments carry their key as reference, for the ledger check.
 */
export function newWalletOp(random: () => number, wallets: string[], keyPrefix: string, i: number): WalletOp {
  const from = wallets[Math.floor(random() * wallets.length)]!;
  const amount = usd(BigInt(1 + Math.floor(random() * 500)));
  const key = `${keyPrefix}-${i}-${crypto.randomUUID()}`;
  const sentAt = Date.now();
  if (random() < 0.6) return { kind: "payment", key, path: `/v1/wallets/${from}/payments`, body: { amount, reference: key }, walletId: from, sentAt, answers: [] };
  const others = wallets.filter((w) => w !== from);
  const to = others[Math.floor(random() * others.length)]!;
  return { kind: "transfer", key, path: "/v1/transfers", body: { fromWalletId: from, toWalletId: to, amount }, walletId: from, sentAt, answers: [] };
}

/** Answers that break the contract: anything but success, 409 INSUFFICIENT_FUNDS, 503 UNAVAILABLE or no answer at all. */
export function unexpectedFailures<A extends { status: number; body: any }>(answers: A[]): A[] {
  return answers.filter(
    (a) => a.status !== 0 && !(a.status >= 200 && a.status < 300) && !(a.status === 409 && a.body?.code === "INSUFFICIENT_FUNDS") && !(a.status === 503 && a.body?.code === "UNAVAILABLE"),
  );
}

/** Every acknowledged payment is in the ledger exactly once (its journal, found by its key as reference), and nothing else is. */
export async function expectPaymentsExactlyOnce(sql: postgres.Sql, acked: { key: string; journalId: string }[]): Promise<void> {
  const rows = await sql`select id, reference from journals where kind = 'payment'`;
  const byReference = new Map<string, string[]>();
  for (const r of rows) byReference.set(r.reference, [...(byReference.get(r.reference) ?? []), r.id]);
  const misplaced = acked.filter((p) => JSON.stringify(byReference.get(p.key)) !== JSON.stringify([p.journalId]));
  expect(misplaced.map((p) => ({ key: p.key, journals: byReference.get(p.key) }))).toEqual([]);
  expect(rows.length).toBe(acked.length);
}

/**
 * The verifier is clean. Its first queries may still meet a connection the chaos left dead (503),
 * or a node still finding its feet: asked again while `retry` says so, a bounded number of times.
 */
export async function verifyIsCleanAfterChaos<A extends { status: number; body: any }>(
  get: () => Promise<A>,
  bounds: { attempts: number; pauseMs: number; retry: (answer: A) => boolean } = { attempts: 5, pauseMs: 0, retry: (a) => a.status === 503 },
): Promise<void> {
  let verify = await get();
  for (let attempt = 1; attempt < bounds.attempts && bounds.retry(verify); attempt++) {
    if (bounds.pauseMs) await Bun.sleep(bounds.pauseMs);
    verify = await get();
  }
  expect(verify.body).toEqual({ ok: true, mismatches: [] });
}

/**
 * Every acknowledged transfer (by the id its caller heard) exists exactly once and is settled, with
 * one reserve and one credit journal each: every wallet in the chaos suites stays active, so no
 * credit is refused and nothing needs voiding. Call once the saga is idle.
 */
export async function expectTransfersSettledOnce(sql: postgres.Sql, ackedIds: string[]): Promise<void> {
  const rows = await sql`select id, status from transfers`;
  expect(rows.map((r) => r.id as string).sort()).toEqual([...ackedIds].sort());
  expect(rows.filter((r) => r.status !== "settled").map((r) => ({ ...r }))).toEqual([]);
  const [journals] = await sql`select
    (select count(*) from journals where kind = 'transfer_reserve')::int as reserves,
    (select count(*) from journals where kind = 'transfer_credit')::int as credits`;
  expect({ ...journals }).toEqual({ reserves: ackedIds.length, credits: ackedIds.length });
}

/**
 * Every wallet's posted equals its funding minus its acknowledged payments, plus and minus its
 * transfers (with `settledOnly`, only those the database says settled), and nothing is held.
 */
export async function expectWalletBalances(
  sql: postgres.Sql,
  o: { wallets: string[]; fundingMinor: bigint; payments: WalletOp[]; transfers: WalletOp[]; settledOnly: boolean },
): Promise<void> {
  const minorOf = (op: WalletOp) => BigInt(lastAnswer(op).body.amount.replace(".", ""));
  const expected = new Map(o.wallets.map((w) => [w, { posted: o.fundingMinor, held: 0n }]));
  for (const p of o.payments) expected.get(p.walletId)!.posted -= minorOf(p);
  const statuses = o.settledOnly ? new Map((await sql`select id, status from transfers`).map((r) => [r.id as string, r.status as string])) : undefined;
  for (const t of o.transfers) {
    if (statuses && statuses.get(lastAnswer(t).body.id) !== "settled") continue;
    expected.get(t.body.fromWalletId!)!.posted -= minorOf(t);
    expected.get(t.body.toWalletId!)!.posted += minorOf(t);
  }
  const rows = await sql`select id, posted::text, held::text from wallets where id = any(${sql.array(o.wallets)}::uuid[])`;
  const actual = new Map(rows.map((r) => [r.id as string, { posted: BigInt(r.posted), held: BigInt(r.held) }]));
  expect(actual).toEqual(expected);
}
