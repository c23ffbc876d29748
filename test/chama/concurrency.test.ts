import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ApiResponse } from "../support/node";
import { cents, expectOk, expectProblem, newChama, people, startChamaNode, usd, verifyIsClean, type ChamaNode } from "./support";

/**
 * Many callers at once on one chama, through real HTTP on a real Postgres. The chama's actor takes
 * its commands one after another, so no interleaving may promise more than the group has, count a
 * vote twice, or start a payout twice.
 */
let n: ChamaNode;
beforeAll(async () => {
  n = await startChamaNode("chamaconcurrency");
});
afterAll(() => n.t.stop());

function statusCounts(answers: ApiResponse[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const k = a.status < 300 ? String(a.status) : `${a.status} ${a.body?.code}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

describe("withdrawal requests racing past the balance", () => {
  test("30 requests of 10.00 at once from several members on 100.00: exactly 10 hold money, the rest are INSUFFICIENT_FUNDS, and no more than 100.00 is ever paid", async () => {
    const p = people("a1", "a2", "a3", "m1", "m2", "m3");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1, p.m2, p.m3], fund: "100.00" });
    const requesters = [p.m1, p.m2, p.m3, p.a1, p.a2];

    // While the requests race, read the balance over and over: held never passes posted.
    let racing = true;
    const observed: { posted: bigint; held: bigint; available: bigint }[] = [];
    const watcher = (async () => {
      for (let i = 0; i < 200 && racing; i++) {
        const b = await c.balance();
        observed.push({ posted: cents(b.posted), held: cents(b.held), available: cents(b.available) });
      }
    })();
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => c.request(requesters[i % requesters.length]!, "10.00")));
    racing = false;
    await watcher;

    expect(statusCounts(answers)).toEqual({ "201": 10, "409 INSUFFICIENT_FUNDS": 20 });
    const accepted = answers.filter((a) => a.status === 201).map((a) => a.body);
    expect(new Set(accepted.map((w) => w.id)).size).toBe(10);
    for (const w of accepted) expect(w).toMatchObject({ status: "pending_approval", amount: "10.00" });
    expect(observed.length).toBeGreaterThan(0);
    for (const b of observed) {
      expect(b.held <= b.posted).toBe(true);
      expect(b.available).toBe(b.posted - b.held);
      expect(b.available >= 0n).toBe(true);
    }
    expect(await c.balance()).toEqual({ posted: "100.00", held: "100.00", available: "0.00" });

    // Every accepted request goes all the way, each in parallel with the others.
    const finals = await Promise.all(
      accepted.map(async (w) => {
        expect(expectOk(await c.step(w.id, "approve", c.approverFor(w.memberId))).status).toBe("approved");
        expect(expectOk(await c.step(w.id, "continue", w.memberId)).status).toBe("processing");
        return expectOk(await c.step(w.id, "complete", undefined));
      }),
    );
    expect(finals.map((f) => f.status)).toEqual(Array(10).fill("completed"));

    const completed = await c.withdrawals("completed");
    const paid = completed.reduce((sum, w) => sum + cents(w.amount), 0n);
    expect(completed).toHaveLength(10);
    expect(paid <= 10_000n).toBe(true);
    const balance = await c.balance();
    expect(cents(balance.posted)).toBe(10_000n - paid);
    expect(balance).toEqual({ posted: usd(10_000n - paid), held: "0.00", available: usd(10_000n - paid) });
    expect(await c.journals("chama_withdrawal")).toBe(10);

    // Per member: what each was paid adds up to what left the chama.
    const withdrawn = await Promise.all([...new Set(requesters)].map(async (m) => cents((await c.member(m)).withdrawn)));
    expect(withdrawn.reduce((a, b) => a + b, 0n)).toBe(paid);

    expect((await c.request(p.m1, "0.01")).body.code).toBe("INSUFFICIENT_FUNDS");
    await verifyIsClean(n.t);
  });

  test("requests, cancels and rejections racing each other never let held pass posted", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2], fund: "50.00" });
    const first = await Promise.all(Array.from({ length: 10 }, (_, i) => c.request(i % 2 ? p.m1 : p.m2, "10.00")));
    expect(statusCounts(first)).toEqual({ "201": 5, "409 INSUFFICIENT_FUNDS": 5 });
    const open = first.filter((a) => a.status === 201).map((a) => a.body);

    // Release two (one cancel, one reject) while 10 more requests race for the freed 20.00.
    const [cancelled, rejected, ...second] = await Promise.all([
      c.step(open[0].id, "cancel", open[0].memberId),
      c.step(open[1].id, "reject", p.a1),
      ...Array.from({ length: 10 }, (_, i) => c.request(i % 2 ? p.m1 : p.m2, "10.00")),
    ]);
    expect(cancelled!.status).toBe(200);
    expect(rejected!.status).toBe(200);
    const won = second.filter((a) => a.status === 201).length;
    expect(won).toBeLessThanOrEqual(2);
    for (const a of second.filter((x) => x.status !== 201)) expect({ s: a.status, c: a.body.code }).toEqual({ s: 409, c: "INSUFFICIENT_FUNDS" });
    const b = await c.balance();
    expect(cents(b.held)).toBe(BigInt(3 + won) * 1_000n);
    expect(cents(b.held) <= cents(b.posted)).toBe(true);
    expect(b.posted).toBe("50.00");
    await verifyIsClean(n.t);
  });
});

describe("two admins approving at the same time", () => {
  test("approvalsRequired 2 with 3 admins: both approvals land, once each, and the request is approved", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "50.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "10.00");
    const [x, y] = await Promise.all([c.step(w.id, "approve", p.a2), c.step(w.id, "approve", p.a3)]);
    expect([x!.status, y!.status]).toEqual([200, 200]);
    // One answer saw one vote (still pending), the other saw both (approved): one transition.
    const seen = [x!.body, y!.body].map((b) => `${b.status}:${b.approvals.length}`).sort();
    expect(seen).toEqual(["approved:2", "pending_approval:1"]);

    const after = await c.withdrawal(w.id);
    expect(after.status).toBe("approved");
    expect([...after.approvals].sort()).toEqual([p.a2, p.a3].sort());
    expect(await c.reviews(w.id)).toHaveLength(2);
    expectProblem(await c.step(w.id, "approve", p.a1), 409, "INVALID_TRANSITION");
    const reviews = (await c.audit()).filter((e) => e.action === "chama.withdrawal.review" && e.target === w.id);
    expect(reviews).toHaveLength(2);
  });

  test("approvalsRequired 1: exactly one approval is taken, the other is INVALID_TRANSITION", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "50.00" });
    const w = await c.requested(p.m1, "10.00");
    const answers = await Promise.all([c.step(w.id, "approve", p.a2), c.step(w.id, "approve", p.a3)]);
    expect(statusCounts(answers)).toEqual({ "200": 1, "409 INVALID_TRANSITION": 1 });
    const winner = answers.find((a) => a.status === 200)!.body;
    expect(winner.status).toBe("approved");
    expect(winner.approvals).toHaveLength(1);
    const after = await c.withdrawal(w.id);
    expect(after).toMatchObject({ status: "approved", approvals: winner.approvals });
    expect(await c.reviews(w.id)).toHaveLength(1);
  });

  test("one approval and one rejection at once: exactly one decides", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "50.00" });
    const w = await c.requested(p.m1, "10.00");
    const answers = await Promise.all([c.step(w.id, "approve", p.a2), c.step(w.id, "reject", p.a3)]);
    expect(statusCounts(answers)).toEqual({ "200": 1, "409 INVALID_TRANSITION": 1 });
    const final = (await c.withdrawal(w.id)).status;
    expect(final).toBe(answers.find((a) => a.status === 200)!.body.status);
    expect(["approved", "rejected"]).toContain(final);
    expect((await c.balance()).held).toBe(final === "approved" ? "10.00" : "0.00");
  });

  test("the same admin approving 5 times at once (different keys) counts once", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "50.00", rules: { approvalsRequired: 2 } });
    const w = await c.requested(p.m1, "10.00");
    const answers = await Promise.all(Array.from({ length: 5 }, () => c.step(w.id, "approve", p.a2)));
    expect(statusCounts(answers)).toEqual({ "200": 1, "409 INVALID_TRANSITION": 4 });
    expect(await c.withdrawal(w.id)).toMatchObject({ status: "pending_approval", approvals: [p.a2] });
  });
});

describe("continue called 5 times at once", () => {
  test("one continue starts the payout, four are INVALID_TRANSITION, and there is exactly one payout", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const w = await c.requested(p.m1, "40.00");
    expect(expectOk(await c.step(w.id, "approve", p.a1)).status).toBe("approved");

    // The requester three times and an admin twice, each with its own key.
    const callers = [p.m1, p.a1, p.m1, p.a2, p.m1];
    const answers = await Promise.all(callers.map((who) => c.step(w.id, "continue", who)));
    expect(statusCounts(answers)).toEqual({ "200": 1, "409 INVALID_TRANSITION": 4 });
    expect(answers.find((a) => a.status === 200)!.body.status).toBe("processing");
    expect(await c.balance()).toEqual({ posted: "100.00", held: "40.00", available: "60.00" });

    // The processor may be told twice as well (its own retries): one completion, one journal.
    const completions = await Promise.all(Array.from({ length: 5 }, () => c.step(w.id, "complete", undefined)));
    expect(statusCounts(completions)).toEqual({ "200": 1, "409 INVALID_TRANSITION": 4 });
    expect(await c.balance()).toEqual({ posted: "60.00", held: "0.00", available: "60.00" });
    expect(await c.withdrawals("completed")).toHaveLength(1);
    expect(await c.journals("chama_withdrawal")).toBe(1);
    const audit = await c.audit();
    expect(audit.filter((e) => e.action === "chama.withdrawal.continue" && e.target === w.id)).toHaveLength(1);
    expect(audit.filter((e) => e.action === "chama.withdrawal.complete" && e.target === w.id)).toHaveLength(1);
    await verifyIsClean(n.t);
  });

  test("complete and fail racing: exactly one wins and the books agree with it", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const w = await c.processing(p.m1, "40.00");
    const answers = await Promise.all([c.step(w.id, "complete", undefined), c.step(w.id, "fail", undefined, { reason: "timeout" })]);
    expect(statusCounts(answers)).toEqual({ "200": 1, "409 INVALID_TRANSITION": 1 });
    const final = (await c.withdrawal(w.id)).status;
    expect(final).toBe(answers.find((a) => a.status === 200)!.body.status);
    expect(await c.balance()).toEqual(
      final === "completed" ? { posted: "60.00", held: "0.00", available: "60.00" } : { posted: "100.00", held: "0.00", available: "100.00" },
    );
    expect(await c.journals("chama_withdrawal")).toBe(final === "completed" ? 1 : 0);
    await verifyIsClean(n.t);
  });
});

describe("deposits racing withdrawals", () => {
  test("20 deposits of 1.00 from members while requests race: contributions and balance add up", async () => {
    const p = people("a1", "a2", "m1", "m2");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1, p.m2] });
    const [deposits, requests] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, (_, i) => c.call("POST", "/deposits", { memberId: i % 2 ? p.m1 : p.m2, amount: "1.00" }))),
      Promise.all(Array.from({ length: 20 }, (_, i) => c.request(i % 2 ? p.m1 : p.m2, "1.00"))),
    ]);
    expect(statusCounts(deposits)).toEqual({ "201": 20 });
    const held = requests.filter((r) => r.status === 201).length;
    for (const r of requests.filter((x) => x.status !== 201)) expect(r.body.code).toBe("INSUFFICIENT_FUNDS");
    expect(await c.balance()).toEqual({ posted: "20.00", held: usd(BigInt(held) * 100n), available: usd(BigInt(20 - held) * 100n) });
    expect((await c.member(p.m1)).contributed).toBe("10.00");
    expect((await c.member(p.m2)).contributed).toBe("10.00");
    await verifyIsClean(n.t);
  });
});

describe("an actor that was passivated", () => {
  test("reloads from Postgres with its balance, rules, members and half-approved requests intact", async () => {
    const p = people("a1", "a2", "a3", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2, p.a3], members: [p.m1], fund: "50.00", rules: { approvalsRequired: 2, maxPerDay: "30.00" } });
    const w = await c.requested(p.m1, "20.00");
    expectOk(await c.step(w.id, "approve", p.a2));
    const before = await Promise.all([c.view(), c.withdrawal(w.id), c.audit()]);

    n.t.node.host.passivateIdle(Date.now() + 24 * 3600_000);
    expect(n.t.node.host.inspect(c.id).loaded).toBe(false);

    expect(await Promise.all([c.view(), c.withdrawal(w.id), c.audit()])).toEqual(before);
    // The reloaded actor still knows a2 voted, the daily total so far, and the balance held.
    expectProblem(await c.step(w.id, "approve", p.a2), 409, "INVALID_TRANSITION");
    expectProblem(await c.request(p.m1, "10.01"), 422, "LIMIT_EXCEEDED");
    expect(expectOk(await c.step(w.id, "approve", p.a3))).toMatchObject({ status: "approved" });
    expect(expectOk(await c.step(w.id, "continue", p.m1)).status).toBe("processing");
    expect(expectOk(await c.step(w.id, "complete", undefined)).status).toBe("completed");
    expect(await c.balance()).toEqual({ posted: "30.00", held: "0.00", available: "30.00" });
    await verifyIsClean(n.t);
  });
});

describe("membership and steps racing", () => {
  test("a member removed while 10 of their requests race: none of them stays open and the hold is all released", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const [removal, ...requests] = await Promise.all([
      c.call("POST", `/members/${p.m1}/remove`, {}, p.a1),
      ...Array.from({ length: 10 }, () => c.request(p.m1, "5.00")),
    ]);
    expect(removal!.status).toBe(200);
    for (const r of requests) {
      if (r.status !== 201) expect({ s: r.status, c: r.body.code }).toEqual({ s: 403, c: "NOT_A_MEMBER" });
    }
    const made = requests.filter((r) => r.status === 201).map((r) => r.body.id as string);
    const finals = await Promise.all(made.map((id) => c.withdrawal(id)));
    expect(finals.map((w) => w.status)).toEqual(made.map(() => "cancelled"));
    expect(await c.balance()).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    await verifyIsClean(n.t);
  });

  test("continue and cancel racing on an approved request: exactly one wins", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const w = await c.requested(p.m1, "40.00");
    expectOk(await c.step(w.id, "approve", p.a1));
    // Admins on both sides, so every loser has the same right answer; the requester's own steps on
    // an ended request have their own test in withdrawals.test.ts.
    const answers = await Promise.all([c.step(w.id, "continue", p.a1), c.step(w.id, "cancel", p.a2), c.step(w.id, "continue", p.a2), c.step(w.id, "cancel", p.a1)]);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    for (const a of answers.filter((x) => x.status !== 200)) expect({ s: a.status, c: a.body.code }).toEqual({ s: 409, c: "INVALID_TRANSITION" });
    const final = (await c.withdrawal(w.id)).status;
    expect(final).toBe(answers.find((a) => a.status === 200)!.body.status);
    expect((await c.balance()).held).toBe(final === "processing" ? "40.00" : "0.00");
  });
});

describe("bounds", () => {
  test("at most 100 withdrawals are open at once; a request ended longer ago than the chama remembers is 404", async () => {
    const p = people("a1", "a2", "m1");
    const c = await newChama(n.t, { admins: [p.a1, p.a2], members: [p.m1], fund: "200.00" });
    const answers = await Promise.all(Array.from({ length: 101 }, () => c.request(p.m1, "1.00")));
    expect(statusCounts(answers)).toEqual({ "201": 100, "422 LIMIT_EXCEEDED": 1 });
    const ids = answers.filter((a) => a.status === 201).map((a) => a.body.id as string);
    // The first one ends first, so it is the one the chama forgets first below.
    const cancels = [await c.step(ids[0]!, "cancel", p.a1), ...(await Promise.all(ids.slice(1).map((id) => c.step(id, "cancel", p.a1))))];
    expect(statusCounts(cancels)).toEqual({ "200": 100 });
    expect(await c.balance()).toEqual({ posted: "200.00", held: "0.00", available: "200.00" });

    // More endings than the chama remembers in memory: the oldest is still refused cleanly.
    for (let i = 0; i < 5; i++) {
      const w = await c.requested(p.m1, "1.00");
      expectOk(await c.step(w.id, "reject", p.a2));
    }
    const oldest = ids[0]!;
    expect((await c.withdrawal(oldest)).status).toBe("cancelled");
    // The actor remembers the last 100 endings; past those a step names nothing it knows, so it
    // is 404 WITHDRAWAL_NOT_FOUND (GET still shows the stored row) and changes nothing.
    for (const [step, who] of [["approve", p.a2], ["cancel", p.a1], ["continue", p.a1], ["complete", undefined]] as const) {
      expectProblem(await c.step(oldest, step, who), 404, "WITHDRAWAL_NOT_FOUND");
    }
    expect((await c.withdrawal(oldest)).status).toBe("cancelled");
    expect(await c.balance()).toEqual({ posted: "200.00", held: "0.00", available: "200.00" });
    await verifyIsClean(n.t);
  });
});
