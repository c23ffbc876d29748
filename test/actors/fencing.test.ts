import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { serveOn, type Side } from "../support/split-brain";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { verifyIsClean } from "../support/ledger";
import { cents } from "../support/money";
import { fundedWallet, type ApiResponse } from "../support/node";

/**
 * Split brain on purpose: two nodes on ONE database, both holding the same wallet's actor in
 * memory, both taking payments for it at once. Nothing routes a wallet to one owner here, so only
 * the snapshot version (fencing) stands between them and a double spend. A node that loses a race
 * must reload and retry, or tell its caller to retry; it must never act on its stale state.
 */
let db: TestDatabase;
let sql: postgres.Sql;
let a: Side;
let b: Side;

beforeAll(async () => {
  db = await createTestDatabase("fencing");
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  // One after the other: both run the migrations (the second finds them applied).
  a = await serveOn("A", db.url);
  b = await serveOn("B", db.url);
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

const other = (side: Side) => (side === a ? b : a);

interface Request {
  key: string;
  path: string;
  body: unknown;
  /** The node that gave the final (definite) answer. */
  answeredBy: Side;
  first: ApiResponse;
  final: ApiResponse;
}

/** Business answers and success are definite; 503 OVERLOADED / UNAVAILABLE ask the caller to retry. */
const retryable = (r: ApiResponse) => r.status === 503 && ["UNAVAILABLE", "OVERLOADED"].includes(r.body?.code);

async function stateOn(side: Side, walletId: string) {
  const res = await side.api("GET", `/admin/wallets/${walletId}/state`);
  expect(res.status).toBe(200);
  return res.body as { loaded: boolean; version: number | null; context: { postedMinor: string; posted: string } | null };
}

async function walletOn(side: Side, walletId: string) {
  const res = await side.api("GET", `/v1/wallets/${walletId}`);
  expect(res.status).toBe(200);
  return res.body as { balance: { posted: string; held: string; available: string }; version: number };
}

/** Everything a replay could change: row counts and the wallet's stored balances and version. */
async function ledgerState(walletId: string) {
  const [counts] = await sql`select
    (select count(*) from journals)::int as journals, (select count(*) from postings)::int as postings,
    (select count(*) from idempotency_keys)::int as keys, (select count(*) from events)::int as outbox`;
  const [wallet] = await sql`select posted::text, held::text, version::text from wallets where id = ${walletId}`;
  return { counts: { ...counts }, wallet: { ...wallet } };
}

/** `count` payments of 1.00, request i on node A when i is even and on B when odd, `lanes` at a time. */
async function payments(walletId: string, count: number, lanes: number): Promise<Request[]> {
  const requests: Request[] = [];
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) {
      const side = i % 2 === 0 ? a : b;
      const req = { key: `fence-${walletId}-${i}`, path: `/v1/wallets/${walletId}/payments`, body: { amount: "1.00", reference: `p-${i}` } };
      const first = await side.api("POST", req.path, req.body, { key: req.key });
      requests[i] = { ...req, answeredBy: side, first, final: first };
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return requests;
}

/** A caller told to retry does so with the same key, here on the other node each time (bounded). */
async function retryUntilDefinite(requests: Request[], rounds = 10): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const open = requests.filter((r) => retryable(r.final));
    if (!open.length) return;
    await Promise.all(
      open.map(async (r) => {
        r.answeredBy = other(r.answeredBy);
        r.final = await r.answeredBy.api("POST", r.path, r.body, { key: r.key });
      }),
    );
  }
}

/** First answers: success, a business refusal, or a retryable 503; nothing else. Returns the tally. */
function firstAnswers(requests: Request[]) {
  const unexpected = requests
    .map((r) => r.first)
    .filter((r) => r.status !== 201 && !(r.status === 409 && r.body.code === "INSUFFICIENT_FUNDS") && !retryable(r));
  expect(unexpected.map((r) => ({ status: r.status, body: r.body }))).toEqual([]);
  const tally = {
    paidOnA: requests.filter((r) => r.first.status === 201 && r.answeredBy === a).length,
    paidOnB: requests.filter((r) => r.first.status === 201 && r.answeredBy === b).length,
    refused: requests.filter((r) => r.first.status === 409).length,
    unavailable: requests.filter((r) => r.first.body.code === "UNAVAILABLE").length,
    overloaded: requests.filter((r) => r.first.body.code === "OVERLOADED").length,
  };
  console.info(`split brain, first answers: ${JSON.stringify(tally)}`);
  return tally;
}

/** Exactly `affordable` payments went through, each from a different balance, and the ledger agrees. */
async function expectSpentExactly(walletId: string, requests: Request[], affordable: number): Promise<void> {
  const paid = requests.filter((r) => r.final.status === 201);
  const refused = requests.filter((r) => r.final.status !== 201);
  expect(paid.length).toBe(affordable);
  expect(refused.map((r) => `${r.final.status} ${r.final.body.code}`)).toEqual(Array(requests.length - affordable).fill("409 INSUFFICIENT_FUNDS"));
  // Each success saw a different balance, all of them at or above zero: (affordable - 1).00 down to 0.00.
  const after = paid.map((r) => cents(r.final.body.balance.available)).sort((x, y) => Number(x - y));
  expect(after).toEqual(Array.from({ length: affordable }, (_, i) => BigInt(i * 100)));

  expect((await walletOn(b, walletId)).balance).toEqual({ posted: "0.00", held: "0.00", available: "0.00" });
  const journals = await sql`select id from journals where wallet_id = ${walletId} and kind = 'payment'`;
  expect(journals.map((j) => j.id as string).sort()).toEqual(paid.map((r) => r.final.body.id as string).sort());
  await verifyIsClean(a, b);
}

/** Every request again, same key, on the node that did NOT give its answer: the same answer, no new effect. */
async function expectReplaysIdentical(walletId: string, requests: Request[]): Promise<void> {
  const before = await ledgerState(walletId);
  const replays = await Promise.all(requests.map((r) => other(r.answeredBy).api("POST", r.path, r.body, { key: r.key })));
  expect(replays.map((r) => ({ status: r.status, body: r.body }))).toEqual(requests.map((r) => ({ status: r.final.status, body: r.final.body })));
  expect(await ledgerState(walletId)).toEqual(before);
  await verifyIsClean(a, b);
}

describe("two nodes holding the same wallet in memory", () => {
  test("100 payments of 1.00 on 37.00, all at once and alternating between the nodes, spend it exactly once", async () => {
    // Fund on A, then top up on B: both actors are loaded, and A's is already one version behind.
    const id = await fundedWallet(a.api, "USD", "20.00");
    expect((await b.api("POST", `/v1/wallets/${id}/credits`, { amount: "17.00" })).status).toBe(201);
    const [onA, onB, stored] = await Promise.all([stateOn(a, id), stateOn(b, id), walletOn(a, id)]);
    expect(onA.loaded).toBe(true);
    expect(onB.loaded).toBe(true);
    expect(onB.version).toBe(stored.version);
    expect(onA.version).toBe(stored.version - 1);
    expect(onA.context!.postedMinor).toBe("2000");

    const requests = await payments(id, 100, 100);
    const tally = firstAnswers(requests);
    expect(tally.paidOnA + tally.paidOnB).toBeLessThanOrEqual(37);
    await retryUntilDefinite(requests);
    await expectSpentExactly(id, requests, 37);
    await expectReplaysIdentical(id, requests);
  });

  test("300 payments of 1.00 on 250.00, 16 in flight alternating between the nodes, spend it exactly once", async () => {
    // Small batches on both sides, all the time: the two actors keep fencing each other off.
    const id = await fundedWallet(a.api, "USD", "250.00");
    const requests = await payments(id, 300, 16);
    const tally = firstAnswers(requests);
    // Both nodes wrote the wallet in turn, so each of them was fenced off and reloaded along the way.
    expect(tally.paidOnA).toBeGreaterThan(0);
    expect(tally.paidOnB).toBeGreaterThan(0);
    await retryUntilDefinite(requests);
    await expectSpentExactly(id, requests, 250);
    await expectReplaysIdentical(id, requests);
  });

  test("a node whose actor is stale reloads on its next request: pay on A, pay on B, pay on A again", async () => {
    const id = await fundedWallet(a.api, "USD", "10.00");
    const first = await a.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    const second = await b.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.00" });
    expect((await stateOn(a, id)).context!.postedMinor).toBe("900"); // A still believes the 2.00 was never paid
    const third = await a.api("POST", `/v1/wallets/${id}/payments`, { amount: "3.00" });

    expect([first, second, third].map((r) => [r.status, r.body.balance?.available])).toEqual([
      [201, "9.00"],
      [201, "7.00"],
      [201, "4.00"],
    ]);
    const stored = await walletOn(b, id);
    expect(stored.balance.posted).toBe("4.00");
    const [onA, onB] = await Promise.all([stateOn(a, id), stateOn(b, id)]);
    expect({ version: onA.version, posted: onA.context?.postedMinor }).toEqual({ version: stored.version, posted: "400" });
    expect(onB.version).toBe(stored.version - 1); // B is now the stale one, until its next request
    await verifyIsClean(a, b);
  });

  test("a stale node cannot spend money the other node already paid out", async () => {
    const id = await fundedWallet(a.api, "USD", "5.00");
    expect((await b.api("POST", `/v1/wallets/${id}/payments`, { amount: "5.00" })).status).toBe(201);
    expect((await stateOn(a, id)).context!.postedMinor).toBe("500"); // A's memory still holds 5.00

    const spent = await a.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    expect({ status: spent.status, code: spent.body.code }).toEqual({ status: 409, code: "INSUFFICIENT_FUNDS" });
    expect((await walletOn(a, id)).balance.available).toBe("0.00");
    await verifyIsClean(a, b);
  });

  test("a stale node does not refuse a payment that the other node's credit now covers", async () => {
    const id = await fundedWallet(a.api, "USD", "1.00");
    expect((await a.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" })).status).toBe(201);
    expect((await b.api("POST", `/v1/wallets/${id}/credits`, { amount: "5.00" })).status).toBe(201);
    expect((await stateOn(a, id)).context!.postedMinor).toBe("0"); // A's memory says the wallet is empty

    const paid = await a.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.00" });
    expect({ status: paid.status, available: paid.body.balance?.available }).toEqual({ status: 201, available: "3.00" });
    await verifyIsClean(a, b);
  });
});
