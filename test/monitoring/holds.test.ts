import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { people, user, type As } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { alertsAbout, BANK, created, only, OTHER_BANK, setRules, settle, THIRD_BANK, wallet } from "./support";

/**
 * A rule whose outcome is `hold` parks the withdrawal that fired it in manual review: it keeps its
 * amount held, and nothing pays it out (no processor step, no cancel) until a platform admin
 * releases it (it then continues as any other) or rejects it (the hold is released). A chama's
 * withdrawal is parked by the platform the same way; its own admins cannot approve it meanwhile.
 */
let t: TestNode;
const PROCESSOR: As = { sub: "svc-payouts", role: "service", perms: ["withdrawals:process"] };
const AUDITOR: As = { sub: "auditor-1", role: "auditor" };

beforeAll(async () => {
  t = await startTestNode("monitoring-holds", { COFFER_TEST_STRIPE: "off" });
  await setRules(t, only({ newDestination: { outcome: "hold" } }));
});
afterAll(() => t.stop());

const withdrawal = async (id: string) => (await t.api("GET", `/v1/withdrawals/${id}`)).body;
const balance = async (walletId: string) => (await t.api("GET", `/v1/wallets/${walletId}`)).body.balance;

describe("a wallet withdrawal", () => {
  test("is held in manual review; processors and its owner cannot move it; an admin's release lets it continue to completion", async () => {
    const { owner } = people("owner");
    const w = await wallet(t, owner, "100.00");
    const requested = await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "30.00", destination: BANK }, user(owner));
    await settle(t);

    expect(await withdrawal(requested.id)).toMatchObject({ status: "manual_review" });
    expect(await balance(w)).toMatchObject({ posted: "100.00", held: "30.00", available: "70.00" });
    const [alert] = await alertsAbout(t, owner, "new_destination");
    expect(alert).toMatchObject({ held: [requested.id], status: "open" });

    for (const step of ["process", "complete", "fail"]) expectProblem(await t.api("POST", `/v1/withdrawals/${requested.id}/${step}`, {}, { as: PROCESSOR }), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/v1/withdrawals/${requested.id}/cancel`, {}, { as: user(owner) }), 409, "INVALID_TRANSITION");
    // Only a platform admin decides: not the owner, a processor or an auditor.
    for (const as of [user(owner), PROCESSOR, AUDITOR]) expectProblem(await t.api("POST", `/admin/withdrawals/${requested.id}/release`, {}, { as }), 403, "FORBIDDEN");
    expect(await withdrawal(requested.id)).toMatchObject({ status: "manual_review" });

    const released = await created(t, "POST", `/admin/withdrawals/${requested.id}/release`, { note: "the owner confirmed the account" }, undefined, 200);
    expect(released).toMatchObject({ id: requested.id, walletId: w, status: "requested", amount: "30.00", destination: { type: "bank", account: "****3000" } });
    const [hold] = await t.node.db`select status, decided_by, note from monitoring_holds where withdrawal_id = ${requested.id}`;
    expect(hold).toMatchObject({ status: "released", decided_by: "admin#test-admin", note: "the owner confirmed the account" });

    await created(t, "POST", `/v1/withdrawals/${requested.id}/process`, {}, PROCESSOR, 200);
    await created(t, "POST", `/v1/withdrawals/${requested.id}/complete`, {}, PROCESSOR, 200);
    expect(await balance(w)).toMatchObject({ posted: "70.00", held: "0.00", available: "70.00" });
    // A release settled, the same withdrawal is not held again, and a second release is refused.
    await settle(t);
    expect(await withdrawal(requested.id)).toMatchObject({ status: "completed" });
    expectProblem(await t.api("POST", `/admin/withdrawals/${requested.id}/release`, {}), 409, "INVALID_TRANSITION");
    await verifyIsClean(t.api);
  });

  test("an admin's rejection ends it and releases its hold: the money stays in the wallet", async () => {
    const { owner } = people("owner");
    const w = await wallet(t, owner, "100.00");
    const requested = await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "40.00", destination: OTHER_BANK }, user(owner));
    await settle(t);
    expect(await balance(w)).toMatchObject({ held: "40.00", available: "60.00" });

    const rejected = await created(t, "POST", `/admin/withdrawals/${requested.id}/reject`, { note: "the account is not the owner's" }, undefined, 200);
    expect(rejected).toMatchObject({ id: requested.id, status: "rejected" });
    expect(await balance(w)).toMatchObject({ posted: "100.00", held: "0.00", available: "100.00" });
    for (const step of ["release", "reject"]) expectProblem(await t.api("POST", `/admin/withdrawals/${requested.id}/${step}`, {}), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/v1/withdrawals/${requested.id}/process`, {}, { as: PROCESSOR }), 409, "INVALID_TRANSITION");
    await verifyIsClean(t.api);
  });

  test("a withdrawal a processor took before monitoring looked is not held: the hold is recorded as missed and the alert stays", async () => {
    const { owner } = people("owner");
    const w = await wallet(t, owner, "100.00");
    const requested = await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "5.00", destination: THIRD_BANK }, user(owner));
    await created(t, "POST", `/v1/withdrawals/${requested.id}/process`, {}, PROCESSOR, 200);
    await settle(t);
    expect(await withdrawal(requested.id)).toMatchObject({ status: "processing" });
    const [hold] = await t.node.db`select status from monitoring_holds where withdrawal_id = ${requested.id}`;
    expect(hold?.status).toBe("missed");
    expect(await alertsAbout(t, owner, "new_destination")).toEqual([expect.objectContaining({ held: [requested.id] })]);
  });

  test("a withdrawal that is not held cannot be released or rejected; an unknown one is not found", async () => {
    const { owner } = people("owner");
    const w = await wallet(t, owner, "100.00");
    const requested = await created(t, "POST", `/v1/wallets/${w}/withdrawals`, { amount: "5.00", destination: BANK }, user(owner));
    expectProblem(await t.api("POST", `/admin/withdrawals/${requested.id}/release`, {}), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/admin/withdrawals/${crypto.randomUUID()}/release`, {}), 404, "WITHDRAWAL_NOT_FOUND");
  });
});

describe("a chama withdrawal", () => {
  async function chamaWithPendingRequest() {
    const { admin, second, member } = people("admin", "second", "member");
    const chama = (await created(t, "POST", "/v1/chamas", { name: "Umoja", asset: "USD" }, user(admin))).id as string;
    await created(t, "POST", `/v1/chamas/${chama}/members`, { memberId: second, role: "admin" }, user(admin));
    await created(t, "POST", `/v1/chamas/${chama}/members`, { memberId: member }, user(admin));
    await created(t, "POST", `/v1/chamas/${chama}/deposits`, { memberId: member, amount: "100.00" });
    const requested = await created(t, "POST", `/v1/chamas/${chama}/withdrawals`, { amount: "25.00", destination: BANK }, user(member));
    return { chama, admin, second, member, id: requested.id as string, at: `/v1/chamas/${chama}/withdrawals/${requested.id}` };
  }

  test("is parked for the platform: its admins cannot approve it until a platform admin releases it, then it pays out as usual", async () => {
    const c = await chamaWithPendingRequest();
    await settle(t);
    expect((await t.api("GET", c.at)).body).toMatchObject({ status: "manual_review", approvals: [] });
    expect(await alertsAbout(t, c.chama, "new_destination")).toEqual([expect.objectContaining({ subject: { kind: "chama", id: c.chama }, held: [c.id] })]);
    expectProblem(await t.api("POST", `${c.at}/approve`, {}, { as: user(c.admin) }), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `${c.at}/continue`, {}, { as: user(c.member) }), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/admin/withdrawals/${c.id}/release`, {}, { as: user(c.admin) }), 403, "FORBIDDEN");

    const released = await created(t, "POST", `/admin/withdrawals/${c.id}/release`, { note: "fine" }, undefined, 200);
    expect(released).toMatchObject({ id: c.id, chamaId: c.chama, status: "manual_review" });
    await created(t, "POST", `${c.at}/approve`, {}, user(c.admin), 200);
    await created(t, "POST", `${c.at}/continue`, {}, user(c.member), 200);
    expect((await t.api("GET", c.at)).body).toMatchObject({ status: "processing" });
    const audit = (await t.api("GET", `/v1/chamas/${c.chama}/audit?limit=50`)).body.items.map((a: any) => `${a.action} ${a.actor}`);
    expect(audit).toContain("chama.withdrawal.hold system");
    expect(audit).toContain("chama.withdrawal.release admin#test-admin");
    await verifyIsClean(t.api);
  });

  test("a platform rejection ends it and the chama has its money available again", async () => {
    const c = await chamaWithPendingRequest();
    await settle(t);
    const rejected = await created(t, "POST", `/admin/withdrawals/${c.id}/reject`, {}, undefined, 200);
    expect(rejected).toMatchObject({ id: c.id, status: "rejected" });
    expect((await t.api("GET", `/v1/chamas/${c.chama}`)).body.balance).toMatchObject({ posted: "100.00", held: "0.00", available: "100.00" });
    await verifyIsClean(t.api);
  });
});
