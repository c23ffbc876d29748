import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { checkLedger, type VerifyProgress } from "../../src/ledger/verify";
import { user, people } from "../support/auth";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * The verifier on a ledger of a few thousand wallets: it pages through them (bounded memory),
 * reports its progress and a summary, finds a difference wherever it hides (the last page too),
 * lists at most `limit` and counts them all; `bun run verify` says the same as a real command.
 */
const SEEDED = 3_000;
const PAGE = 500;
const ROOT = new URL("../..", import.meta.url).pathname;
const ORDER: VerifyProgress["stage"][] = ["journals", "wallets", "chamas", "done"];

let t: TestNode;
let realWallet: string;
beforeAll(async () => {
  t = await startTestNode("verify");
  // A few accounts made through the API, as the product makes them: credits, a payment, a chama
  // with a deposit and an open (held) withdrawal.
  realWallet = await fundedWallet(t.api, "USD", "25.00");
  expect((await t.api("POST", `/v1/wallets/${realWallet}/payments`, { amount: "5.00" })).status).toBe(201);
  const p = people("admin", "member");
  const chama = await t.api("POST", "/v1/chamas", { name: "verified", asset: "USD" }, { as: user(p.admin) });
  expect(chama.status).toBe(201);
  expect((await t.api("POST", `/v1/chamas/${chama.body.id}/members`, { memberId: p.member }, { as: user(p.admin) })).status).toBe(201);
  expect((await t.api("POST", `/v1/chamas/${chama.body.id}/deposits`, { memberId: p.member, amount: "10.00" })).status).toBe(201);
  const w = await t.api("POST", `/v1/chamas/${chama.body.id}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "DE89370400440532013000" } }, { as: user(p.member) });
  expect(w.status).toBe(201);

  // The bulk: thousands of wallets, each credited once by a balanced journal, written straight
  // into the tables (the API would take minutes and prove nothing more about the verifier).
  await t.node.db.begin(async (sql) => {
    await sql`insert into wallets (id, owner_id, asset, status, posted, held, version, machine_version, snapshot, created_at, updated_at)
      select gen_random_uuid(), 'seeded-' || g, 'USD', 'active', 100 * g, 0, 1, 1, '{}'::jsonb, now(), now() from generate_series(1, ${SEEDED}::int) g`;
    await sql`insert into movements (journal_id, kind, asset, wallet_id, reference, debit, credit, amount, created_at)
      select gen_random_uuid(), 'credit', 'USD', w.id, 'seeded', 'system:funding', w.id::text, w.posted, now()
      from wallets w where w.owner_id like 'seeded-%'`;
  });
});
afterAll(() => t.stop());

async function counts() {
  const [row] = await t.node.db`select (select count(*) from wallets)::int as wallets, (select count(*) from chamas)::int as chamas,
    (select count(*) from postings)::int as postings, (select count(distinct journal_id) from postings)::int as journals`;
  return row as { wallets: number; chamas: number; postings: number; journals: number };
}

/** `bun run verify` against the test database, as an operator runs it. */
async function verifyCommand(): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["bun", "run", "verify"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: t.db.url, LOG_LEVEL: "warn" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("a clean ledger of a few thousand wallets", () => {
  test("is checked a page at a time, with progress after each page and a summary of what was checked", async () => {
    const seen: VerifyProgress[] = [];
    const report = await checkLedger(t.node.db, { pageSize: PAGE, onProgress: (p) => seen.push(p) });
    const c = await counts();
    expect(c.wallets).toBe(SEEDED + 1);
    expect(report.ok).toBe(true);
    expect(report.mismatches).toEqual([]);
    expect(report.summary).toMatchObject({
      wallets: { checked: c.wallets, total: c.wallets },
      chamas: { checked: c.chamas, total: c.chamas },
      postings: c.postings,
      journals: c.journals,
      mismatches: 0,
    });
    expect(report.summary.elapsedMs).toBeGreaterThanOrEqual(0);

    // One report per page of wallets (never more than a page read at once), counts only rising.
    const walletPages = seen.filter((p) => p.stage === "wallets");
    expect(walletPages.length).toBe(Math.ceil(c.wallets / PAGE));
    expect(walletPages.map((p) => p.wallets.checked)).toEqual(walletPages.map((_, i) => Math.min((i + 1) * PAGE, c.wallets)));
    expect(seen.map((p) => p.stage)).toEqual([...seen.map((p) => p.stage)].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b)));
    expect(seen.at(-1)!.stage).toBe("done");
  });

  test("the admin endpoint and `bun run verify` agree: the books balance, with progress and a summary on stderr", async () => {
    expect((await t.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
    const run = await verifyCommand();
    expect(run.code).toBe(0);
    const c = await counts();
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ ok: true, mismatches: [], summary: { wallets: { checked: c.wallets }, postings: c.postings, mismatches: 0 } });
    expect(run.stderr).toContain("verify: summing every journal");
    expect(run.stderr).toMatch(/verify: [0-9,]+ postings in [0-9,]+ journals · wallets [0-9,]+\/[0-9,]+/);
    expect(run.stderr).toContain(`verify: ${c.wallets.toLocaleString("en-US")} wallets and ${c.chamas} chamas checked, ${c.postings.toLocaleString("en-US")} postings`);
    expect(run.stderr).toContain("0 mismatches");
    expect(run.stderr).toContain("the books balance");
  });
});

describe("a ledger with differences", () => {
  test("every difference is found wherever it is, at most `limit` are listed, all are counted, and the command exits 1", async () => {
    // The wallet that sorts last (on the last page), one in the middle, and a movement booked under one
    // wallet that touches another's account (balanced by construction, but in the wrong history).
    const [last] = await t.node.db`select id from wallets order by id desc limit 1`;
    const [middle] = await t.node.db`select id from wallets order by id offset ${Math.floor(SEEDED / 2)} limit 1`;
    await t.node.db`update wallets set posted = posted + 1 where id = ${last!.id}`;
    await t.node.db`update wallets set held = posted + 7 where id = ${middle!.id}`;
    const [journal] = await t.node.db`insert into movements (journal_id, kind, asset, wallet_id, debit, credit, amount, created_at)
      values (gen_random_uuid(), 'credit', 'USD', ${last!.id}, 'system:funding', ${realWallet}, 3, now()) returning journal_id`;
    try {
      const full = await checkLedger(t.node.db, { pageSize: PAGE });
      expect(full.ok).toBe(false);
      expect(full.mismatches.map((m) => [m.kind, m.walletId ?? m.journalId]).sort()).toEqual(
        [
          ["movement_stray", last!.id],
          ["posted_differs", last!.id],
          ["held_differs", middle!.id],
          ["negative_available", middle!.id],
        ].sort(),
      );
      expect(full.summary.mismatches).toBe(4);

      const capped = await checkLedger(t.node.db, { pageSize: PAGE, limit: 2 });
      expect(capped.mismatches.length).toBe(2);
      expect(capped.summary.mismatches).toBe(4);
      expect(capped.ok).toBe(false);

      const run = await verifyCommand();
      expect(run.code).toBe(1);
      expect(JSON.parse(run.stdout).summary.mismatches).toBe(4);
      expect(run.stderr).toContain("4 mismatches");
      expect(run.stderr).toContain("THE BOOKS DO NOT BALANCE");
    } finally {
      await t.node.db`update wallets set posted = posted - 1 where id = ${last!.id}`;
      await t.node.db`update wallets set held = 0 where id = ${middle!.id}`;
      await t.node.db`delete from movements where journal_id = ${journal!.journal_id}`;
    }
    expect((await checkLedger(t.node.db)).ok).toBe(true);
  });
});
