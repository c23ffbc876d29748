import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { setLogLevel } from "../../lib/log";
import { startTestNode, type TestNode } from "../support/node";
import { appService, captureConsole, deliveryLog, register, startReceiver, waitFor, WEBHOOK_TEST_ENV, type Receiver } from "./support";

/**
 * Giving up and switching off: a delivery is retried a bounded number of times (then `failed`, and
 * the wallet's later events go on); an endpoint that keeps failing for long enough is disabled,
 * with an alert (an outbox event and a log line), and the secret is in neither.
 */
let t: TestNode;
const receivers: Receiver[] = [];
let consoleCapture: ReturnType<typeof captureConsole> | undefined;
const printed = (): string[] => consoleCapture?.lines ?? [];

beforeAll(async () => {
  t = await startTestNode("webhooksoff", {
    ...WEBHOOK_TEST_ENV,
    // Disabled after 8 failed attempts in a row that span at least 400 ms; a delivery is given up after 5 attempts.
    WEBHOOK_DISABLE_AFTER_FAILURES: "8",
    WEBHOOK_DISABLE_AFTER_MS: "400",
    WEBHOOK_MAX_ATTEMPTS: "5",
    WEBHOOK_RETRY_BASE_MS: "30",
    WEBHOOK_RETRY_MAX_MS: "120",
  });
  consoleCapture = captureConsole();
  setLogLevel("debug");
});
afterAll(async () => {
  setLogLevel("warn");
  consoleCapture?.restore();
  for (const r of receivers) await r.stop();
  await t?.stop();
});
afterEach(() => {
  for (const r of receivers) r.behave(() => ({ status: 200 }));
});

function receiver(...args: Parameters<typeof startReceiver>): Receiver {
  const r = startReceiver(...args);
  receivers.push(r);
  return r;
}

async function wallet(ownerId: string): Promise<string> {
  const res = await t.api("POST", "/v1/wallets", { ownerId, asset: "USD" });
  expect(res.status).toBe(201);
  return res.body.id;
}

describe("auto-disable", () => {
  test("an endpoint failing again and again for long enough is disabled, with an alert event and a log line", async () => {
    const app = appService("failing");
    const r = receiver(() => ({ status: 500 }));
    const endpoint = await register(t, r.url, ["wallet.*"], app);
    const walletId = await wallet("owner-failing");
    for (const amount of ["1.00", "2.00", "3.00"]) expect((await t.api("POST", `/v1/wallets/${walletId}/credits`, { amount })).status).toBe(201);

    await waitFor("the endpoint disabled", async () => (await t.api("GET", `/v1/webhook-endpoints/${endpoint.id}`, undefined, { as: app })).body.status === "disabled");
    const view = (await t.api("GET", `/v1/webhook-endpoints/${endpoint.id}`, undefined, { as: app })).body;
    expect(view).toMatchObject({ status: "disabled", disabledReason: "failing" });

    // After at least 8 failures in a row, once the streak had lasted 400 ms: the opening was given
    // up after its 5 attempts, and the first credit (next in the wallet's line) kept failing.
    const log = await deliveryLog(t, endpoint.id, app);
    expect(log.every((d) => d.aggregateId === walletId)).toBe(true);
    const attempts = log.flatMap((d) => d.attempts).sort((a: any, b: any) => Date.parse(a.at) - Date.parse(b.at));
    expect(attempts.length).toBeGreaterThanOrEqual(8);
    expect(attempts.every((a: any) => a.error === "http_5xx" && a.statusCode === 500)).toBe(true);
    expect(Date.parse(view.disabledAt) - Date.parse(attempts[0].at)).toBeGreaterThanOrEqual(400);
    expect(log.find((d) => d.eventType === "wallet.opened")).toMatchObject({ status: "failed", attempts: expect.any(Array) });
    // Nothing more is attempted; the rest wait, pending, for the endpoint to be enabled.
    const seen = r.requests.length;
    await Bun.sleep(300);
    expect(r.requests.length).toBe(seen);
    expect(log.filter((d) => d.status === "pending").map((d) => d.eventType)).toEqual(["wallet.credited", "wallet.credited", "wallet.credited"]);

    // The alert: an event on the outbox (published like every other; never sent to apps' endpoints)…
    const [alert] = await t.node.db`select aggregate_id, type, payload from outbox where type = 'webhook_endpoint.disabled' and aggregate_id = ${endpoint.id}`;
    expect(alert).toMatchObject({ type: "webhook_endpoint.disabled", payload: { endpointId: endpoint.id, owner: `service:${app.sub}`, reason: "failing", lastError: "http_5xx" } });
    expect(alert!.payload.consecutiveFailures).toBeGreaterThanOrEqual(8);
    // …and a log line naming the endpoint, neither its URL nor its secret.
    const line = printed().find((l) => l.includes("webhook endpoint disabled") && l.includes(endpoint.id));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: "warn", endpointId: endpoint.id, lastError: "http_5xx" });
    expect(line).not.toContain(endpoint.secret);
    expect(line).not.toContain(String(r.port));
    expect(await t.node.metrics.text()).toMatch(/coffer_webhook_deliveries_out_total\{outcome="disabled"\} [1-9]/);

    // Enabled again, with the receiver well: the waiting event goes out, and the failure count starts over.
    r.behave(() => ({ status: 200 }));
    const on = await t.api("POST", `/v1/webhook-endpoints/${endpoint.id}/enable`, {}, { as: app });
    expect(on.body).toMatchObject({ status: "enabled", disabledReason: null });
    await waitFor("the waiting events", () => r.accepted().length === 3);
    expect(r.accepted().map((x) => [x.body.type, x.body.data.amount])).toEqual([
      ["wallet.credited", "100"],
      ["wallet.credited", "200"],
      ["wallet.credited", "300"],
    ]);
  }, 30_000);
});

describe("giving up", () => {
  test("a delivery is given up after its last attempt, and the wallet's later events go on", async () => {
    const app = appService("gives-up");
    // The opening is refused for ever; everything else is taken.
    const r = receiver((req) => ({ status: req.body.type === "wallet.opened" ? 400 : 200 }));
    const endpoint = await register(t, r.url, ["wallet.*"], app);
    const walletId = await wallet("owner-gives-up");
    // Its 5 failures stay under the 8 that disable an endpoint, and the credit's success resets the count.
    const credited = await t.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "1.00" });
    expect(credited.status).toBe(201);

    await waitFor("the credit delivered", () => r.accepted().length === 1);
    expect(await t.node.webhookDelivery.idle()).toBe(true);
    const log = await deliveryLog(t, endpoint.id, app);
    const opened = log.find((d) => d.eventType === "wallet.opened");
    expect(opened).toMatchObject({ status: "failed", nextAttemptAt: null, deliveredAt: null });
    expect(opened.attempts.map((a: any) => a.error)).toEqual(Array(5).fill("http_4xx"));
    expect(log.find((d) => d.eventType === "wallet.credited")).toMatchObject({ status: "delivered" });
    expect(r.requests.filter((x) => x.body.type === "wallet.opened")).toHaveLength(5);
    expect((await t.api("GET", `/v1/webhook-endpoints/${endpoint.id}`, undefined, { as: app })).body.status).toBe("enabled");
    expect(await t.node.metrics.text()).toMatch(/coffer_webhook_deliveries_out_total\{outcome="gave_up"\} [1-9]/);

    // A failed delivery can still be sent again by hand.
    const again = await t.api("POST", `/v1/webhook-deliveries/${opened.id}/redeliver`, {}, { as: app });
    expect(again.status).toBe(201);
    r.behave(() => ({ status: 200 }));
    await waitFor("the redelivery", () => r.accepted().some((x) => x.body.type === "wallet.opened"));
  }, 30_000);
});
