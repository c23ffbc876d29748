import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { people } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { alertsAbout, BANK, created, only, OTHER_BANK, pay, setRules, settle, THIRD_BANK, wallet } from "./support";

/**
 * Each rule fires at its exact threshold and not one below, and a burst is one alert per rule,
 * subject and window, not one per event. The worker is run by hand (`settle`), after the money
 * moved: monitoring reads committed events, never a payment in flight.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("monitoring-rules", { COFFER_TEST_STRIPE: "off" });
});
afterAll(() => t.stop());

describe("rapid activity (more than max movements of a kind within the window)", () => {
  test("3 payments in the window do not fire; the 4th does; the 5th and 6th bump the same alert", async () => {
    await setRules(t, only({ rapidActivity: { max: 3, windowMs: 300_000, kinds: ["payment"], scopes: ["wallet"] } }));
    const { owner } = people("owner");
    const w = await wallet(t, owner);
    for (let i = 0; i < 3; i++) await pay(t, w, "1.00");
    await settle(t);
    expect(await alertsAbout(t, w, "rapid_activity")).toEqual([]);

    await pay(t, w, "1.00");
    await settle(t);
    const [alert] = await alertsAbout(t, w, "rapid_activity");
    expect(alert).toMatchObject({ rule: "rapid_activity", severity: "high", status: "open", subject: { kind: "wallet", id: w }, count: 1 });
    expect(alert.facts).toMatchObject({ kind: "payment", count: 4, max: 3, windowMs: 300_000, scope: "wallet" });

    await pay(t, w, "1.00");
    await pay(t, w, "1.00");
    await settle(t);
    const after = await alertsAbout(t, w, "rapid_activity");
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: alert.id, count: 3, facts: { count: 6 } });
  });

  test("movements of another kind do not count toward a kind's limit", async () => {
    await setRules(t, only({ rapidActivity: { max: 3, windowMs: 300_000, kinds: ["payment"], scopes: ["wallet"] } }));
    const w = await wallet(t, people("owner").owner);
    for (let i = 0; i < 3; i++) await pay(t, w, "1.00");
    await created(t, "POST", `/v1/wallets/${w}/credits`, { amount: "1.00" });
    await settle(t);
    expect(await alertsAbout(t, w, "rapid_activity")).toEqual([]);
  });

  test("per owner: two wallets of one person add up, and the alert is about the person", async () => {
    await setRules(t, only({ rapidActivity: { max: 3, windowMs: 300_000, kinds: ["payment"], scopes: ["wallet", "owner"] } }));
    const { owner } = people("owner");
    const [a, b] = [await wallet(t, owner), await wallet(t, owner)];
    await pay(t, a, "1.00");
    await pay(t, b, "1.00");
    await pay(t, a, "1.00");
    await settle(t);
    expect(await alertsAbout(t, owner, "rapid_activity")).toEqual([]);
    await pay(t, b, "1.00");
    await settle(t);
    expect(await alertsAbout(t, owner, "rapid_activity")).toEqual([expect.objectContaining({ subject: { kind: "owner", id: owner }, count: 1 })]);
    expect(await alertsAbout(t, a, "rapid_activity")).toEqual([]);
    expect(await alertsAbout(t, b, "rapid_activity")).toEqual([]);
  });
});

describe("unusual amount (per asset: below low, at or above high, at or above very high)", () => {
  const cases: [string, string, string | null][] = [
    ["0.10", "the low threshold itself", null],
    ["0.09", "one cent below low", "low"],
    ["999.99", "one cent below high", null],
    ["1000.00", "exactly high", "medium"],
    ["4999.99", "one cent below very high", "medium"],
    ["5000.00", "exactly very high", "high"],
  ];
  for (const [amount, what, severity] of cases) {
    test(`a payment of ${amount} USD (${what}) ${severity ? `fires with severity ${severity}` : "does not fire"}`, async () => {
      await setRules(t, only({ unusualAmount: { kinds: ["payment"] } }));
      const w = await wallet(t, people("owner").owner, "6000.00");
      await pay(t, w, amount);
      await settle(t);
      const alerts = await alertsAbout(t, w, "unusual_amount");
      if (!severity) return expect(alerts).toEqual([]);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ severity, subject: { kind: "wallet", id: w }, facts: { kind: "payment", asset: "USD", amount } });
    });
  }

  test("thresholds scale with the asset: 0.01 BTC is at its high threshold, 0.00999999 is not", async () => {
    await setRules(t, only({ unusualAmount: { kinds: ["payment"] } }));
    const [a, b] = [await wallet(t, people("o").o, "1", "BTC"), await wallet(t, people("o").o, "1", "BTC")];
    await pay(t, a, "0.01000000");
    await pay(t, b, "0.00999999");
    await settle(t);
    expect(await alertsAbout(t, a, "unusual_amount")).toEqual([expect.objectContaining({ severity: "medium", facts: expect.objectContaining({ threshold: "0.01000000" }) })]);
    expect(await alertsAbout(t, b, "unusual_amount")).toEqual([]);
  });

  test("several unusual amounts in a window are one alert, raised to the highest severity seen", async () => {
    await setRules(t, only({ unusualAmount: { kinds: ["payment"] } }));
    const w = await wallet(t, people("owner").owner, "20000.00");
    await pay(t, w, "1000.00");
    await pay(t, w, "6000.00");
    await pay(t, w, "2000.00");
    await settle(t);
    expect(await alertsAbout(t, w, "unusual_amount")).toEqual([expect.objectContaining({ count: 3, severity: "high" })]);
  });
});

describe("new destination (the first payout of an owner to a destination, by keyed fingerprint)", () => {
  test("the first withdrawal to an account fires; the same account again (however written) does not; another account bumps the alert", async () => {
    await setRules(t, only({ newDestination: {} }));
    const { owner } = people("owner");
    const [a, b] = [await wallet(t, owner), await wallet(t, owner)];
    await created(t, "POST", `/v1/wallets/${a}/withdrawals`, { amount: "1.00", destination: BANK });
    await settle(t);
    const [first] = await alertsAbout(t, owner, "new_destination");
    expect(first).toMatchObject({ subject: { kind: "owner", id: owner }, count: 1, facts: { kind: "withdrawal", destinationType: "bank" } });

    // The same IBAN, from the owner's other wallet, spaced and cased differently.
    await created(t, "POST", `/v1/wallets/${b}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: BANK.account.replaceAll(" ", "").toLowerCase() } });
    await settle(t);
    expect(await alertsAbout(t, owner, "new_destination")).toEqual([expect.objectContaining({ id: first.id, count: 1 })]);

    await created(t, "POST", `/v1/wallets/${a}/withdrawals`, { amount: "1.00", destination: OTHER_BANK });
    await settle(t);
    expect(await alertsAbout(t, owner, "new_destination")).toEqual([expect.objectContaining({ id: first.id, count: 2 })]);
  });

  test("destinations are per owner, and never appear in an alert or its event, in clear or masked", async () => {
    await setRules(t, only({ newDestination: {} }));
    const [x, y] = [people("x").x, people("y").y];
    await created(t, "POST", `/v1/wallets/${await wallet(t, x)}/withdrawals`, { amount: "1.00", destination: THIRD_BANK });
    await created(t, "POST", `/v1/wallets/${await wallet(t, y)}/withdrawals`, { amount: "1.00", destination: THIRD_BANK });
    await settle(t);
    const alerts = [...(await alertsAbout(t, x, "new_destination")), ...(await alertsAbout(t, y, "new_destination"))];
    expect(alerts).toHaveLength(2);
    const events = await t.node.db`select payload::text as p from events where type = 'alert.raised'`;
    const stored = await t.node.db`select fingerprint from monitoring_destinations`;
    for (const text of [JSON.stringify(alerts), ...events.map((e) => e.p as string), ...stored.map((s) => s.fingerprint as string)]) {
      expect(text).not.toContain("2004101005050001");
      expect(text).not.toContain("3M02606");
      expect(text).not.toContain("2606");
    }
  });
});

describe("structuring (several amounts just under a threshold within 24 h)", () => {
  const rules = () => only({ structuring: { count: 3, marginPercent: 10, kinds: ["payment"], thresholds: { USD: "1000.00" } } });

  test("3 payments between 900.00 and 999.99 fire on the 3rd; 2 do not", async () => {
    await setRules(t, rules());
    const w = await wallet(t, people("owner").owner, "5000.00");
    await pay(t, w, "900.00");
    await pay(t, w, "999.99");
    await settle(t);
    expect(await alertsAbout(t, w, "structuring")).toEqual([]);
    await pay(t, w, "950.00");
    await settle(t);
    expect(await alertsAbout(t, w, "structuring")).toEqual([
      expect.objectContaining({ severity: "medium", count: 1, facts: expect.objectContaining({ count: 3, threshold: "1000.00", from: "900.00", asset: "USD" }) }),
    ]);
  });

  test("899.99 (one cent below the band) and 1000.00 (the threshold itself) do not count", async () => {
    await setRules(t, rules());
    const w = await wallet(t, people("owner").owner, "5000.00");
    await pay(t, w, "900.00");
    await pay(t, w, "999.99");
    await pay(t, w, "899.99");
    await pay(t, w, "1000.00");
    await settle(t);
    expect(await alertsAbout(t, w, "structuring")).toEqual([]);
  });
});

describe("the rules are configuration", () => {
  test("GET shows the rules in force and their source; an admin's change is versioned and audited", async () => {
    const before = await t.api("GET", "/admin/monitoring/rules");
    expect(before.status).toBe(200);
    const rules = only({ rapidActivity: { max: 7 } });
    await setRules(t, rules);
    const after = await t.api("GET", "/admin/monitoring/rules");
    expect(after.body).toMatchObject({ source: "admin", updatedBy: "admin#test-admin" });
    expect(after.body.rules.rapidActivity.max).toBe(7);
    const audits = await t.node.db`select version, actor, before, after, note from monitoring_rules_audit order by seq desc limit 2`;
    const [audit, prior] = audits;
    expect(audit).toMatchObject({ actor: "admin#test-admin", note: "test", version: prior!.version + 1 });
    expect(audit!.before).toEqual(before.body.rules);
    expect((audit!.after as any).rapidActivity.max).toBe(7);
  });

  test("rules that make no sense are refused, naming the field, and change nothing", async () => {
    const current = (await t.api("GET", "/admin/monitoring/rules")).body;
    const bad = structuredClone(current.rules);
    bad.unusualAmount.thresholds.USD = { low: "10.00", high: "5.00", veryHigh: "50.00" };
    const res = await t.api("POST", "/admin/monitoring/rules", { rules: bad });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.errors)).toContain("body.rules.unusualAmount.thresholds.USD");
    const tooFine = structuredClone(current.rules);
    tooFine.unusualAmount.thresholds.USD = { low: "0.001", high: "5.00", veryHigh: "50.00" };
    expect((await t.api("POST", "/admin/monitoring/rules", { rules: tooFine })).status).toBe(400);
    expect((await t.api("GET", "/admin/monitoring/rules")).body).toEqual(current);
  });
});
