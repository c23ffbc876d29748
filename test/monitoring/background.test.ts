import { afterAll, beforeAll, expect, test } from "bun:test";
import { people } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { serveOn, type Side } from "../support/split-brain";
import { alertsAbout, only, pay, setRules, wallet } from "./support";

/**
 * With MONITORING=on the worker runs by itself after commits; two nodes on one database evaluate
 * each event once between them (one of them holds the worker's lock at a time, and the cursor
 * moves in the same transaction as what the events came to).
 */
let a: TestNode;
let b: Side;

beforeAll(async () => {
  a = await startTestNode("monitoring-background", { MONITORING: "on", COFFER_TEST_STRIPE: "off" });
  b = await serveOn("monitoring-background-b", a.db.url, { MONITORING: "on" });
  await setRules(a, only({ rapidActivity: { max: 3, windowMs: 300_000, kinds: ["payment"], scopes: ["wallet"] }, unusualAmount: { kinds: ["payment"] } }));
});
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

async function until(done: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await done()) return;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("an unusual payment is alerted on by itself, soon after its commit", async () => {
  const w = await wallet(a, people("owner").owner, "2000.00");
  await pay(a, w, "1500.00");
  await until(async () => (await alertsAbout(a, w, "unusual_amount")).length === 1, "the alert");
});

test("payments made through two nodes at once are each counted once: one alert, fired for exactly the events past the limit", async () => {
  const w = await wallet(a, people("owner").owner, "100.00");
  const payments = Array.from({ length: 10 }, (_, i) => (i % 2 ? pay(a, w, "1.00") : b.api("POST", `/v1/wallets/${w}/payments`, { amount: "1.00" })));
  await Promise.all(payments);
  await until(async () => (await a.node.monitoring.lag()).events === 0, "monitoring to catch up");
  await until(async () => (await alertsAbout(a, w, "rapid_activity"))[0]?.count === 7, "the 4th to 10th payments to fire").catch(async (e) => {
    console.error("DEBUG", JSON.stringify(await alertsAbout(a, w)), JSON.stringify(await a.node.db`select m.seq, m.at, o.xid::text from monitoring_movements m join events o using (seq) where m.subject_kind = 'wallet' and m.subject_id = ${w} order by o.xid, m.seq`));
    throw e;
  });
  const alerts = await alertsAbout(a, w, "rapid_activity");
  expect(alerts).toHaveLength(1);
  expect(alerts[0].facts.count).toBe(10);
  const [movements] = await a.node.db`select count(*)::int as n from monitoring_movements where subject_kind = 'wallet' and subject_id = ${w} and kind = 'payment'`;
  expect(movements!.n).toBe(10);
});
