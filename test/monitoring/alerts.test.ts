import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PERMISSIONS } from "../../lib/principal";
import { people, user, type As } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { alertsAbout, only, pay, setRules, settle, wallet } from "./support";

/**
 * An alert's life: open → investigating → resolved | dismissed, each review with its reviewer, time
 * and note; illegal moves refused. Every raise and review is also an event on the outbox. Auditors
 * read alerts; only platform admins review them; users and services can do neither.
 */
let t: TestNode;
const AUDITOR: As = { sub: "auditor-1", role: "auditor" };
const EVERY_PERMISSION: As = { sub: "svc-all", role: "service", perms: [...PERMISSIONS] };

beforeAll(async () => {
  t = await startTestNode("monitoring-alerts", { COFFER_TEST_STRIPE: "off" });
  await setRules(t, only({ unusualAmount: { kinds: ["payment"] } }));
});
afterAll(() => t.stop());

/** A fresh alert: a payment at the unusual-amount `high` threshold. */
async function freshAlert(): Promise<any> {
  const { owner } = people("owner");
  const w = await wallet(t, owner, "2000.00");
  await pay(t, w, "1000.00");
  await settle(t);
  const [alert] = await alertsAbout(t, w, "unusual_amount");
  expect(alert).toBeDefined();
  return alert;
}

const review = (id: string, status: string, note?: string, as?: As) => t.api("POST", `/admin/alerts/${id}/review`, { status, ...(note ? { note } : {}) }, as ? { as } : {});

describe("the lifecycle", () => {
  test("open → investigating → resolved, each step with its reviewer, time and note", async () => {
    const alert = await freshAlert();
    expect(alert.status).toBe("open");
    const investigating = await review(alert.id, "investigating", "asked the owner");
    expect(investigating.status).toBe(200);
    expect(investigating.body).toMatchObject({ id: alert.id, status: "investigating", reviewedBy: "admin#test-admin", reviews: [{ reviewer: "admin#test-admin", from: "open", to: "investigating", note: "asked the owner" }] });
    const resolved = await review(alert.id, "resolved", "a salary, confirmed");
    expect(resolved.body).toMatchObject({ status: "resolved", reviews: [{ to: "investigating" }, { from: "investigating", to: "resolved", note: "a salary, confirmed" }] });
    expect(resolved.body.reviewedAt).toBeString();
    const read = await t.api("GET", `/admin/alerts/${alert.id}`, undefined, { as: AUDITOR });
    expect(read.body).toEqual(resolved.body);
  });

  test("open may be dismissed at once; a dismissed or resolved alert takes no further review", async () => {
    const alert = await freshAlert();
    expect((await review(alert.id, "dismissed", "a test payment")).body.status).toBe("dismissed");
    for (const to of ["investigating", "resolved", "dismissed"]) expectProblem(await review(alert.id, to), 409, "INVALID_TRANSITION");
    expect((await t.api("GET", `/admin/alerts/${alert.id}`)).body.reviews).toHaveLength(1);
  });

  test("investigating cannot go back to investigating; open is not a review; an unknown alert is not found", async () => {
    const alert = await freshAlert();
    await review(alert.id, "investigating");
    expectProblem(await review(alert.id, "investigating"), 409, "INVALID_TRANSITION");
    expectProblem(await review(alert.id, "open"), 400, "VALIDATION_FAILED");
    expectProblem(await review(crypto.randomUUID(), "resolved"), 404, "NOT_FOUND");
  });

  test("a review retried with the same key is answered once, and done once", async () => {
    const alert = await freshAlert();
    const key = `review-${crypto.randomUUID()}`;
    const first = await t.api("POST", `/admin/alerts/${alert.id}/review`, { status: "investigating" }, { key });
    const again = await t.api("POST", `/admin/alerts/${alert.id}/review`, { status: "investigating" }, { key });
    expect(again).toMatchObject({ status: first.status, body: first.body });
    expect((await t.api("GET", `/admin/alerts/${alert.id}`)).body.reviews).toHaveLength(1);
    expectProblem(await t.api("POST", `/admin/alerts/${alert.id}/review`, { status: "resolved" }, { key }), 422, "IDEMPOTENCY_CONFLICT");
  });
});

describe("alerts are events too", () => {
  test("alert.raised when one is made (not when it is bumped), alert.reviewed for each review: on the outbox, without destinations", async () => {
    const alert = await freshAlert();
    await review(alert.id, "investigating", "looking");
    const events = await t.node.db`select type, payload from outbox where aggregate_id = ${alert.id} order by seq`;
    expect(events.map((e) => e.type)).toEqual(["alert.raised", "alert.reviewed"]);
    expect(events[0]!.payload).toMatchObject({ alertId: alert.id, rule: "unusual_amount", severity: "medium", subjectKind: "wallet", facts: { amount: "1000.00", band: "high" } });
    expect(events[1]!.payload).toMatchObject({ alertId: alert.id, from: "open", status: "investigating", reviewer: "admin#test-admin" });
  });
});

describe("finding alerts", () => {
  test("by status and severity, newest first, a page at a time", async () => {
    const [a, b, c] = [await freshAlert(), await freshAlert(), await freshAlert()];
    await review(b.id, "dismissed");
    const open = await t.api("GET", "/admin/alerts?status=open&severity=medium&limit=200");
    const ids = open.body.items.map((x: any) => x.id);
    expect(ids).toContain(a.id);
    expect(ids).toContain(c.id);
    expect(ids).not.toContain(b.id);
    expect(ids.indexOf(c.id)).toBeLessThan(ids.indexOf(a.id));
    expect((await t.api("GET", "/admin/alerts?status=dismissed&limit=200")).body.items.map((x: any) => x.id)).toContain(b.id);
    expect((await t.api("GET", "/admin/alerts?severity=high&limit=200")).body.items.map((x: any) => x.id)).not.toContain(a.id);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await t.api("GET", `/admin/alerts?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((x: any) => x.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    const all = (await t.api("GET", "/admin/alerts?limit=200")).body.items.map((x: any) => x.id);
    expect(seen).toEqual(all);
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe("who may", () => {
  test("auditors read alerts and rules but review nothing and change no rule", async () => {
    const alert = await freshAlert();
    expect((await t.api("GET", "/admin/alerts", undefined, { as: AUDITOR })).status).toBe(200);
    expect((await t.api("GET", `/admin/alerts/${alert.id}`, undefined, { as: AUDITOR })).status).toBe(200);
    expect((await t.api("GET", "/admin/monitoring/rules", undefined, { as: AUDITOR })).status).toBe(200);
    expectProblem(await review(alert.id, "resolved", undefined, AUDITOR), 403, "FORBIDDEN");
    const rules = (await t.api("GET", "/admin/monitoring/rules")).body.rules;
    expectProblem(await t.api("POST", "/admin/monitoring/rules", { rules }, { as: AUDITOR }), 403, "FORBIDDEN");
  });

  test("users (even the alert's own subject) and services (even with every permission) cannot read or review alerts, or read any admin route", async () => {
    const { owner } = people("owner");
    const w = await wallet(t, owner, "2000.00");
    await pay(t, w, "1000.00");
    await settle(t);
    const [alert] = await alertsAbout(t, w);
    for (const as of [user(owner), EVERY_PERMISSION]) {
      for (const path of ["/admin/alerts", `/admin/alerts/${alert.id}`, "/admin/monitoring/rules", "/admin/transactions", `/admin/transactions/${w}`, "/admin/stats/daily", "/admin/stats/network", "/admin/stats/status", "/admin/health"]) {
        const res = await t.api("GET", path, undefined, { as });
        expectProblem(res, 403, "FORBIDDEN");
        expect(res.body.detail).not.toContain(w);
      }
      expectProblem(await review(alert.id, "resolved", undefined, as), 403, "FORBIDDEN");
      expectProblem(await t.api("POST", `/admin/withdrawals/${crypto.randomUUID()}/release`, {}, { as }), 403, "FORBIDDEN");
    }
    expect((await t.api("GET", `/admin/alerts/${alert.id}`)).body.status).toBe("open");
  });
});
