import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { people, user } from "../support/auth";
import { createTestDatabase, testServerUrl, type TestDatabase } from "../support/db";
import { fundedWallet, type Api, type ApiResponse } from "../support/node";
import { expectProblem } from "../support/problem";
import { serveOn, type Side } from "../support/split-brain";

/**
 * What a caller hears when Postgres refuses the node, with a real Postgres refusing it:
 * - out of connections (SQLSTATE 53300, class 53: insufficient resources): 503 UNAVAILABLE with
 *   Retry-After, for reads and for writes through the actors, nothing written, and the node
 *   serves again as soon as connections free up;
 * - a statement the database cannot run (class 42, a column renamed under the node): 500 INTERNAL,
 *   for a read and for an actor's commit, nothing written, because asking again cannot help.
 *
 * The node connects as a role of its own (so the server's other users are untouched) that owns the
 * test database; "all its connections taken" is `connection limit 0` on that role with its
 * backends ended (superusers are never limited, so it cannot be the suite's own role).
 */
const ROLE = `coffer_refused_${crypto.randomUUID().slice(0, 8)}`;
const PASSWORD = `p${crypto.randomUUID().replaceAll("-", "")}`;
const RECOVERY_ATTEMPTS = 10;

let db: TestDatabase;
let admin: postgres.Sql;
/** A superuser's view of the test database, for what the node wrote. */
let sql: postgres.Sql;
let side: Side;
let api: Api;
/** The test database as the node's role sees it. */
let roleUrl: string;

beforeAll(async () => {
  admin = postgres(await testServerUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create role "${ROLE}" login password '${PASSWORD}'`);
  db = await createTestDatabase("refusals");
  const name = new URL(db.url).pathname.slice(1);
  await admin.unsafe(`alter database "${name}" owner to "${ROLE}"`);
  const url = new URL(db.url);
  url.username = ROLE;
  url.password = PASSWORD;
  roleUrl = url.toString();
  side = await serveOn("refused", roleUrl);
  api = side.api;
  sql = postgres(db.url, { max: 1, onnotice: () => {} });
});

// After refused and broken connections the node's pool may wait out its end timeout (5 s in
// src/node.ts) on connections that never opened: the hook needs more than bun's default 5 s.
afterAll(async () => {
  await side?.stop();
  await sql?.end({ timeout: 1 });
  await db?.drop();
  await admin.unsafe(`drop role if exists "${ROLE}"`);
  await admin.end({ timeout: 1 });
}, 30_000);

/** Every connection the role may have is taken: new ones are refused with 53300, open ones ended. */
async function exhaustConnections(): Promise<void> {
  await admin.unsafe(`alter role "${ROLE}" connection limit 0`);
  await admin`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${ROLE}`;
}

async function freeConnections(): Promise<void> {
  await admin.unsafe(`alter role "${ROLE}" connection limit -1`);
}

/** What the ledger holds, read as a superuser (whom the limit does not touch). */
async function ledger(walletId: string) {
  const [row] = await sql`select (select posted::text from wallets where id = ${walletId}) as posted,
    (select count(*) from journals)::int as journals, (select count(*) from postings)::int as postings,
    (select count(*) from idempotency_keys)::int as keys, (select count(*) from chama_audit)::int as audit`;
  return { ...row };
}

function expectUnavailable(res: ApiResponse): void {
  expectProblem(res, 503, "UNAVAILABLE");
  expect(res.headers.get("retry-after")).toBe("1");
  expect(res.body.retryAfter).toBe(1);
}

/**
 * Ask again, as a client told Retry-After would, a bounded number of times: there is no event for
 * "the pool has connections again", only the next answer.
 */
async function untilAnswered(ask: () => Promise<ApiResponse>): Promise<ApiResponse> {
  let res = await ask();
  for (let attempt = 1; attempt < RECOVERY_ATTEMPTS && res.status === 503; attempt++) {
    await Bun.sleep(Number(res.headers.get("retry-after")) * 1000);
    res = await ask();
  }
  return res;
}

describe("out of connections (class 53)", () => {
  test("reads and writes answer 503 UNAVAILABLE with Retry-After, change nothing, and succeed once connections free up", async () => {
    const p = people("admin", "member");
    const wallet = await fundedWallet(api, "USD", "50.00");
    const chama = await api("POST", "/v1/chamas", { name: "refused", asset: "USD" }, { as: user(p.admin) });
    expect(chama.status).toBe(201);
    // The wallet's and the chama's actors are loaded: their writes reach Postgres only to commit.
    expect((await api("POST", `/v1/wallets/${wallet}/payments`, { amount: "1.00" })).status).toBe(201);
    expect((await api("POST", `/v1/chamas/${chama.body.id}/members`, { memberId: p.member }, { as: user(p.admin) })).status).toBe(201);
    const before = await ledger(wallet);

    await exhaustConnections();
    try {
      // The server really refuses the role, with the SQLSTATE this is about.
      const probe = postgres(roleUrl, { max: 1, onnotice: () => {} });
      const refused = await probe`select 1`.then(() => undefined, (error: { code?: string }) => error.code);
      await probe.end({ timeout: 1 });
      expect(refused).toBe("53300");

      expectUnavailable(await api("GET", `/v1/wallets/${wallet}`));
      expectUnavailable(await api("GET", `/v1/chamas/${chama.body.id}`, undefined, { as: user(p.admin) }));
      expectUnavailable(await api("POST", `/v1/wallets/${wallet}/payments`, { amount: "2.00" }, { key: "pay-while-refused" }));
      expectUnavailable(await api("POST", `/v1/chamas/${chama.body.id}/deposits`, { memberId: p.member, amount: "3.00" }, { key: "deposit-while-refused" }));
      expect(await ledger(wallet)).toEqual(before);
    } finally {
      await freeConnections();
    }

    // The same keys again: each takes effect exactly once.
    expect((await untilAnswered(() => api("POST", `/v1/wallets/${wallet}/payments`, { amount: "2.00" }, { key: "pay-while-refused" }))).status).toBe(201);
    expect((await api("POST", `/v1/wallets/${wallet}/payments`, { amount: "2.00" }, { key: "pay-while-refused" })).status).toBe(201);
    expect((await untilAnswered(() => api("POST", `/v1/chamas/${chama.body.id}/deposits`, { memberId: p.member, amount: "3.00" }, { key: "deposit-while-refused" }))).status).toBe(201);
    const after = await ledger(wallet);
    expect(after.posted).toBe(String(BigInt(before.posted) - 200n));
    expect(after.keys).toBe(before.keys + 2);
    expect((await api("GET", `/v1/wallets/${wallet}`)).body.balance.posted).toBe("47.00");
    expect((await api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
  });
});

describe("a statement the database cannot run (class 42)", () => {
  test("a read and an actor's commit answer 500 INTERNAL, not 503, and nothing is written", async () => {
    const p = people("admin", "member");
    const chama = await api("POST", "/v1/chamas", { name: "renamed", asset: "USD" }, { as: user(p.admin) });
    expect(chama.status).toBe(201);
    expect((await api("POST", `/v1/chamas/${chama.body.id}/members`, { memberId: p.member }, { as: user(p.admin) })).status).toBe(201);
    const auditBefore = (await api("GET", `/v1/chamas/${chama.body.id}/audit`, undefined, { as: user(p.admin) })).body.items;
    const [counts] = await sql`select (select count(*) from chama_audit)::int as audit, (select count(*) from postings)::int as postings`;

    // A column the reads and the chama's commits both name, gone from under the node (42703).
    await sql`alter table chama_audit rename column note to note_renamed`;
    try {
      const read = await api("GET", `/v1/chamas/${chama.body.id}/audit`, undefined, { as: user(p.admin) });
      expectProblem(read, 500, "INTERNAL");
      expect(read.headers.get("retry-after")).toBeNull();
      const write = await api("POST", `/v1/chamas/${chama.body.id}/deposits`, { memberId: p.member, amount: "3.00" }, { key: "deposit-renamed" });
      expectProblem(write, 500, "INTERNAL");
      expect({ ...(await sql`select (select count(*) from chama_audit)::int as audit, (select count(*) from postings)::int as postings`)[0] }).toEqual({ ...counts });
    } finally {
      await sql`alter table chama_audit rename column note_renamed to note`;
    }
    // Mended: the same key now takes effect, once.
    expect((await api("POST", `/v1/chamas/${chama.body.id}/deposits`, { memberId: p.member, amount: "3.00" }, { key: "deposit-renamed" })).status).toBe(201);
    const auditAfter = (await api("GET", `/v1/chamas/${chama.body.id}/audit`, undefined, { as: user(p.admin) })).body.items;
    expect(auditAfter.length).toBe(auditBefore.length + 1);
  });
});
