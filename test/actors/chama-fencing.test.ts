import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { people, user, type As } from "../support/auth";
import { serveOn, type Side } from "../support/split-brain";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { verifyIsClean } from "../support/ledger";
import { cents, usd } from "../support/money";
import type { ApiResponse } from "../support/node";
import { seeded } from "../support/random";
import { untilDefinite } from "../support/retry";

/**
 * Split brain on purpose, for a chama: two nodes on ONE database, no NATS, so nothing routes the
 * chama to one owner. Both load its actor, both take requests, reviews, continues and payouts for
 * the same withdrawals at the same time. Each chama batch commits in its own transaction fenced on
 * the snapshot version; only that stands between the two nodes and a double hold or double payout.
 * A caller told 503 (UNAVAILABLE / OVERLOADED) retries with the same key, on the other node.
 */
let db: TestDatabase;
let sql: postgres.Sql;
let a: Side;
let b: Side;

beforeAll(async () => {
  db = await createTestDatabase("chamafence");
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  a = await serveOn("A", db.url);
  b = await serveOn("B", db.url);
});

/** Stops the balance watcher of a test that failed before stopping it itself. */
let stopWatching: () => Promise<void> = async () => {};

afterAll(async () => {
  await stopWatching();
  await a?.stop();
  await b?.stop();
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

const other = (side: Side) => (side === a ? b : a);
const BANK = { type: "ke_bank", bankCode: "68", account: "0550001111222" } as const;
const ENDED = ["completed", "failed", "rejected", "expired", "cancelled"];

/** One caller's operation: its key, and every answer it got (which node, what it said). */
interface Op {
  label: string;
  path: string;
  body: unknown;
  as?: As;
  key: string;
  first: Side;
  answers: { side: Side; res: ApiResponse }[];
}

const retryable = (r: ApiResponse) => r.status === 503 && ["UNAVAILABLE", "OVERLOADED"].includes(r.body?.code);
const final = (op: Op) => op.answers[op.answers.length - 1]!;
const all: Op[] = [];

function op(label: string, first: Side, path: string, body: unknown, as?: As, key = crypto.randomUUID()): Op {
  const o: Op = { label, path, body, as, key, first, answers: [] };
  all.push(o);
  return o;
}

/** Send, and while the answer is "retry", send again with the same key, on the other node each time (bounded). */
async function run(o: Op): Promise<ApiResponse> {
  let side = o.first;
  return untilDefinite(
    async () => {
      const res = await side.api("POST", o.path, o.body, { key: o.key, ...(o.as ? { as: o.as } : {}) });
      o.answers.push({ side, res });
      side = other(side);
      return res;
    },
    (r) => !retryable(r),
    { attempts: 30, pauseMs: 5 },
  );
}

const show = (r: ApiResponse) => (r.status < 300 ? `${r.status} ${r.body?.status ?? ""}`.trim() : `${r.status} ${r.body?.code}`);


/** Everything a replay could change. */
async function ledgerState(chamaId: string) {
  const [counts] = await sql`select
    (select count(*) from journals)::int as journals, (select count(*) from postings)::int as postings,
    (select count(*) from idempotency_keys)::int as keys, (select count(*) from events)::int as outbox,
    (select count(*) from chama_reviews)::int as reviews, (select count(*) from chama_audit)::int as audit,
    (select count(*) from chama_withdrawals)::int as withdrawals`;
  const [chama] = await sql`select posted::text, held::text, version::text from chamas where id = ${chamaId}`;
  return { counts: { ...counts }, chama: { ...chama } };
}

describe("two nodes taking commands for the same chama at once", () => {
  test("racing requests, reviews, continues and payouts on 100.00 from both nodes: never more than 100.00 promised, each withdrawal ends once, nothing paid twice", async () => {
    const FUNDING = 10_000n;
    const p = people("a1", "a2", "a3", "a4", "m1", "m2", "m3", "m4");
    const admins = [p.a1, p.a2, p.a3, p.a4];
    const members = [p.m1, p.m2, p.m3, p.m4];

    // Set up across both nodes, so both hold the chama's actor, and A's falls behind B's.
    const created = await a.api("POST", "/v1/chamas", { name: "split brain chama", asset: "USD" }, { as: user(p.a1) });
    expect(created.status).toBe(201);
    const chamaId = created.body.id as string;
    const path = `/v1/chamas/${chamaId}`;
    for (const [i, who] of [...admins.slice(1), ...members].entries()) {
      const side = i % 2 === 0 ? b : a;
      const res = await side.api("POST", `${path}/members`, { memberId: who, role: admins.includes(who) ? "admin" : "member" }, { as: user(p.a1) });
      expect(res.status).toBe(201);
    }
    for (const [i, who] of members.entries()) {
      const res = await (i % 2 === 0 ? a : b).api("POST", `${path}/deposits`, { memberId: who, amount: "25.00" });
      expect(res.status).toBe(201);
    }
    const [onA, onB] = [a.node.host.inspect(chamaId), b.node.host.inspect(chamaId)];
    expect(onA.loaded && onB.loaded).toBe(true);
    const [stored] = await sql`select version::int as v, posted::text, held::text from chamas where id = ${chamaId}`;
    expect({ posted: stored!.posted, held: stored!.held }).toEqual({ posted: FUNDING.toString(), held: "0" });
    expect(onB.version).toBe(stored!.v);
    expect(onA.version).toBeLessThan(stored!.v); // A is stale: its next write must be fenced off

    // Watch the stored balance all along: held never passes posted, posted never passes the funding.
    let watching = true;
    const seen: { posted: bigint; held: bigint }[] = [];
    const watcher = (async () => {
      // Bounded, and stops with the test even when an assertion below fails first.
      for (let i = 0; watching && i < 20_000; i++) {
        const [row] = await sql`select posted::text, held::text from chamas where id = ${chamaId}`;
        seen.push({ posted: BigInt(row!.posted), held: BigInt(row!.held) });
      }
    })();
    stopWatching = async () => {
      watching = false;
      await watcher;
    };

    // Phase 1: 80 requests (1.00 to 5.00, 220.00 in all) on 100.00, alternating nodes, all at once.
    const random = seeded(42);
    const amounts = ["1.00", "2.00", "3.00", "5.00"];
    const requesters = [...members, ...admins];
    const request = (label: string, i: number) =>
      op(label, i % 2 === 0 ? a : b, `${path}/withdrawals`, { amount: amounts[i % amounts.length], destination: BANK }, user(requesters[Math.floor(random() * requesters.length)]!));
    const phase1 = Array.from({ length: 80 }, (_, i) => request(`request ${i}`, i));
    await Promise.all(phase1.map(run));

    const accepted1 = phase1.filter((o) => final(o).res.status === 201);
    const refused1 = phase1.filter((o) => final(o).res.status !== 201);
    expect(refused1.map((o) => show(final(o).res)).filter((s) => s !== "409 INSUFFICIENT_FUNDS")).toEqual([]);
    const held1 = accepted1.reduce((s, o) => s + cents(final(o).res.body.amount), 0n);
    expect(held1 <= FUNDING).toBe(true);
    expect(new Set(accepted1.map((o) => final(o).res.body.id)).size).toBe(accepted1.length);
    const [afterRequests] = await sql`select posted::text, held::text from chamas where id = ${chamaId}`;
    expect({ posted: BigInt(afterRequests!.posted), held: BigInt(afterRequests!.held) }).toEqual({ posted: FUNDING, held: held1 });
    // Nothing was refused that the balance could pay: the balance only fell, so what is left is
    // less than every refused amount.
    const minRefused = refused1.reduce((m, o) => (cents((o.body as { amount: string }).amount) < m ? cents((o.body as { amount: string }).amount) : m), FUNDING + 1n);
    expect(FUNDING - held1 < minRefused).toBe(true);
    console.info(`chama split brain: ${accepted1.length} of 80 requests hold ${usd(held1)}; first answers 503: ${phase1.filter((o) => retryable(o.answers[0]!.res)).length}`);

    // Phase 2: every accepted request is fought over from both nodes at once, while new requests
    // (phase 3) compete for whatever the fights release.
    interface Race {
      wid: string;
      requester: string;
      mode: number;
      review: [Op, Op];
      cont?: [Op, Op];
      end?: [Op, Op];
    }
    const races: Race[] = [];
    const phase3: Op[] = [];
    const fight = async (o: Op, i: number) => {
      const w = final(o).res.body;
      const wid = w.id as string;
      const requester = w.memberId as string;
      const [x, y] = admins.filter((ad) => ad !== requester);
      const mode = i % 4;
      const wpath = `${path}/withdrawals/${wid}`;
      const review: [Op, Op] =
        mode === 0
          ? [op(`approve ${wid} by x`, a, `${wpath}/approve`, {}, user(x!)), op(`approve ${wid} by y`, b, `${wpath}/approve`, {}, user(y!))]
          : mode === 1
            ? [op(`approve ${wid}`, a, `${wpath}/approve`, {}, user(x!)), op(`reject ${wid}`, b, `${wpath}/reject`, { note: "no" }, user(y!))]
            : mode === 2
              ? [op(`approve ${wid}`, b, `${wpath}/approve`, {}, user(x!)), op(`cancel ${wid}`, a, `${wpath}/cancel`, { reason: "changed my mind" }, user(requester))]
              : [op(`approve ${wid} on A`, a, `${wpath}/approve`, {}, user(x!)), op(`approve ${wid} again on B`, b, `${wpath}/approve`, {}, user(x!))];
      const race: Race = { wid, requester, mode, review };
      races.push(race);
      await Promise.all(review.map(run));
      // An approval before the cancel is legal (approved -> cancelled): the cancel always ends it.
      if (mode === 2) return;
      if (!review.some((r) => final(r).res.body?.status === "approved")) return;
      race.cont = [op(`continue ${wid} by requester`, a, `${wpath}/continue`, {}, user(requester)), op(`continue ${wid} by admin`, b, `${wpath}/continue`, {}, user(y!))];
      await Promise.all(race.cont.map(run));
      if (!race.cont.some((c) => final(c).res.body?.status === "processing")) return;
      race.end =
        i % 2 === 0
          ? [op(`complete ${wid} on A`, a, `${wpath}/complete`, {}), op(`complete ${wid} on B`, b, `${wpath}/complete`, {})]
          : [op(`complete ${wid}`, b, `${wpath}/complete`, {}), op(`fail ${wid}`, a, `${wpath}/fail`, { reason: "bank said no" })];
      await Promise.all(race.end.map(run));
    };
    const newcomers = async () => {
      for (let i = 0; i < 20; i++) {
        const o = request(`late request ${i}`, i);
        phase3.push(o);
        await run(o);
      }
    };
    await Promise.all([...accepted1.map(fight), newcomers(), newcomers(), newcomers()]);
    await stopWatching();

    // Both nodes wrote the chama in turn, each fencing the other off along the way.
    const wins = (side: Side) => all.filter((o) => final(o).res.status < 300 && final(o).side === side).length;
    expect(wins(a)).toBeGreaterThan(0);
    expect(wins(b)).toBeGreaterThan(0);

    // No answer outside the contract: success, the expected refusals, or "retry".
    const bad = all.flatMap((o) => o.answers).filter(({ res }) => !(res.status < 300 || retryable(res) || (res.status === 409 && ["INSUFFICIENT_FUNDS", "INVALID_TRANSITION"].includes(res.body?.code))));
    expect(bad.map(({ side, res }) => `${side.name}: ${res.status} ${JSON.stringify(res.body)}`)).toEqual([]);
    expect(all.filter((o) => retryable(final(o).res)).map((o) => o.label)).toEqual([]);

    // Approve against cancel: the cancel wins either way; the approval counted only if it came first.
    const cancels = races.filter((r) => r.mode === 2);
    expect(cancels.map((r) => r.review.map((o) => show(final(o).res)))).toEqual(
      cancels.map((r) => [["200 approved", "409 INVALID_TRANSITION"].includes(show(final(r.review[0]).res)) ? show(final(r.review[0]).res) : "200 approved or 409", "200 cancelled"]),
    );
    // Every other pair of rival steps: exactly one won, the other was told INVALID_TRANSITION.
    const pairs = races.flatMap((r) => [r.mode === 2 ? undefined : r.review, r.cont, r.end].filter((pair): pair is [Op, Op] => pair !== undefined));
    const twoWinners = pairs.filter((pair) => pair.filter((o) => final(o).res.status === 200).length !== 1 || pair.filter((o) => final(o).res.body?.code === "INVALID_TRANSITION").length !== 1);
    expect(
      twoWinners.map((pair) => pair.map((o) => `${o.label} [${o.answers.map(({ side, res }) => `${side.name}: ${show(res)}`).join(", ")}]`)),
    ).toEqual([]);

    // Every withdrawal ends as its winning step said, exactly once.
    const views = new Map<string, any>();
    for (const r of races) {
      const view = await b.api("GET", `${path}/withdrawals/${r.wid}`);
      expect(view.status).toBe(200);
      views.set(r.wid, view.body);
      const lastWin = r.mode === 2 ? r.review[1] : [r.end, r.cont, r.review].find((pair) => pair)!.find((o) => final(o).res.status === 200)!;
      const expected = final(lastWin).res.body.status as string;
      expect({ wid: r.wid, status: view.body.status }).toEqual({ wid: r.wid, status: expected === "approved" || expected === "processing" ? "unreachable" : expected });
      expect(ENDED).toContain(view.body.status);
    }
    const outcomeEvents = await sql`select payload->>'withdrawalId' as wid, payload->>'status' as status, count(*)::int as n from events
      where aggregate_id = ${chamaId} and type = 'chama.withdrawal.changed' and payload->>'status' in ('completed', 'failed', 'rejected', 'expired', 'cancelled')
      group by 1, 2`;
    const outcomes = new Map<string, string[]>();
    for (const e of outcomeEvents) for (let k = 0; k < e.n; k++) outcomes.set(e.wid, [...(outcomes.get(e.wid) ?? []), e.status]);
    expect(Object.fromEntries(races.map((r) => [r.wid, outcomes.get(r.wid)]))).toEqual(Object.fromEntries(races.map((r) => [r.wid, [views.get(r.wid).status]])));
    const lateAccepted = phase3.filter((o) => final(o).res.status === 201).map((o) => final(o).res.body.id as string);
    for (const wid of lateAccepted) expect(outcomes.get(wid)).toBeUndefined();

    // No withdrawal paid twice: one chama_withdrawal journal per completed withdrawal, none for the rest.
    const journals = await sql`select o.payload->>'withdrawalId' as wid, j.id::text as journal, (select sum(amount) from postings where journal_id = j.id and amount > 0)::text as amount
      from journals j left join events o on o.aggregate_id = ${chamaId} and o.type = 'chama.withdrawal.changed' and o.payload->>'journalId' = j.id::text
      where j.kind = 'chama_withdrawal' and j.wallet_id = ${chamaId}`;
    const completed = races.filter((r) => views.get(r.wid).status === "completed");
    expect(journals.map((j) => j.wid).sort()).toEqual(completed.map((r) => r.wid).sort());
    for (const j of journals) expect(usd(BigInt(j.amount))).toBe(views.get(j.wid).amount);
    const paid = completed.reduce((s, r) => s + cents(views.get(r.wid).amount), 0n);

    // The balance: funding minus what was paid; held is exactly the late requests still waiting.
    const lateHeld = phase3.filter((o) => final(o).res.status === 201).reduce((s, o) => s + cents(final(o).res.body.amount), 0n);
    const balances = await Promise.all([a, b].map(async (side) => (await side.api("GET", path)).body.balance));
    const expected = { posted: usd(FUNDING - paid), held: usd(lateHeld), available: usd(FUNDING - paid - lateHeld) };
    expect(balances).toEqual([expected, expected]);
    expect(paid + lateHeld <= FUNDING).toBe(true);
    const late = phase3.filter((o) => final(o).res.status !== 201).map((o) => show(final(o).res));
    expect(late.filter((s) => s !== "409 INSUFFICIENT_FUNDS")).toEqual([]);
    for (const s of seen) {
      expect(s.held <= s.posted).toBe(true);
      expect(s.posted <= FUNDING).toBe(true);
      expect(s.held >= 0n).toBe(true);
    }
    // Per member: what each was paid adds up to what left the chama.
    const memberRows = await sql`select coalesce(sum(withdrawn), 0)::text as withdrawn from chama_members where chama_id = ${chamaId}`;
    expect(BigInt(memberRows[0]!.withdrawn)).toBe(paid);
    console.info(`chama split brain: ${races.length} fights, ${completed.length} paid (${usd(paid)}), ${lateAccepted.length} late requests hold ${usd(lateHeld)}; ${all.filter((o) => o.answers.length > 1).length} ops retried`);
    await verifyIsClean(a, b);

    // Every key again, on the node that did NOT give its final answer: the same answer, no new effect.
    const before = await ledgerState(chamaId);
    const replays = await Promise.all(all.map((o) => other(final(o).side).api("POST", o.path, o.body, { key: o.key, ...(o.as ? { as: o.as } : {}) })));
    const differs = all.flatMap((o, i) =>
      replays[i]!.status === final(o).res.status && Bun.deepEquals(replays[i]!.body, final(o).res.body) ? [] : [{ label: o.label, first: show(final(o).res), replay: show(replays[i]!) }],
    );
    expect(differs).toEqual([]);
    expect(await ledgerState(chamaId)).toEqual(before);
    await verifyIsClean(a, b);
  });

  test("a stale node cannot promise money the other node already promised", async () => {
    const p = people("a1", "a2", "m1");
    const created = await a.api("POST", "/v1/chamas", { name: "stale", asset: "USD" }, { as: user(p.a1) });
    const path = `/v1/chamas/${created.body.id}`;
    expect((await a.api("POST", `${path}/members`, { memberId: p.a2, role: "admin" }, { as: user(p.a1) })).status).toBe(201);
    expect((await a.api("POST", `${path}/members`, { memberId: p.m1 }, { as: user(p.a1) })).status).toBe(201);
    expect((await a.api("POST", `${path}/deposits`, { memberId: p.m1, amount: "10.00" })).status).toBe(201);
    const onB = await b.api("POST", `${path}/withdrawals`, { amount: "10.00", destination: BANK }, { as: user(p.m1) });
    expect(onB.status).toBe(201);
    expect(a.node.host.inspect(created.body.id).context).toMatchObject({ withdrawals: {} }); // A still thinks 10.00 is free

    const onA = await a.api("POST", `${path}/withdrawals`, { amount: "1.00", destination: BANK }, { as: user(p.m1) });
    expect({ status: onA.status, code: onA.body.code }).toEqual({ status: 409, code: "INSUFFICIENT_FUNDS" });
    // And A, reloaded, can act on the withdrawal B created: approve on A, continue on B, complete on A.
    expect((await a.api("POST", `${path}/withdrawals/${onB.body.id}/approve`, {}, { as: user(p.a1) })).body.status).toBe("approved");
    expect((await b.api("POST", `${path}/withdrawals/${onB.body.id}/continue`, {}, { as: user(p.m1) })).body.status).toBe("processing");
    expect((await a.api("POST", `${path}/withdrawals/${onB.body.id}/complete`, {})).body.status).toBe("completed");
    const again = await b.api("POST", `${path}/withdrawals/${onB.body.id}/complete`, {});
    expect({ status: again.status, code: again.body.code }).toEqual({ status: 409, code: "INVALID_TRANSITION" });
    expect((await b.api("GET", path)).body.balance).toEqual({ posted: "0.00", held: "0.00", available: "0.00" });
    const [row] = await sql`select count(*)::int as n from journals where kind = 'chama_withdrawal' and wallet_id = ${created.body.id}`;
    expect(row!.n).toBe(1);
    await verifyIsClean(a, b);
  });
});
