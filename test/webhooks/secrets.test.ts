import { afterAll, beforeAll, expect, test } from "bun:test";
import { setLogLevel } from "../../lib/log";
import { startTestNode, type TestNode } from "../support/node";
import { appService, captureConsole, deliveryLog, register, startReceiver, waitFor, WEBHOOK_TEST_ENV, type Receiver } from "./support";

/**
 * An endpoint's signing secret is shown once, in the answer to its registration (and to a retry of
 * that request with the same Idempotency-Key, which makes no second endpoint); it is stored sealed,
 * and never appears in another answer, a log line, the delivery log, or what is sent.
 */
let t: TestNode;
let r: Receiver;
let consoleCapture: ReturnType<typeof captureConsole> | undefined;
const printed = (): string[] => consoleCapture?.lines ?? [];

beforeAll(async () => {
  t = await startTestNode("webhooksecret", WEBHOOK_TEST_ENV);
  r = startReceiver((_req, n) => ({ status: n % 2 ? 500 : 200 }));
  consoleCapture = captureConsole();
  // Everything the node would log, at its most talkative.
  setLogLevel("debug");
});
afterAll(async () => {
  setLogLevel("warn");
  consoleCapture?.restore();
  await r?.stop();
  await t?.stop();
});

test("the secret is shown once (and again to a retry of the same request), and nowhere else", async () => {
  const app = appService("secretive");
  const key = `register-${crypto.randomUUID()}`;
  const first = await t.api("POST", "/v1/webhook-endpoints", { url: r.url, events: ["wallet.*"] }, { as: app, key });
  expect(first.status).toBe(201);
  const secret = first.body.secret as string;
  expect(secret).toMatch(/^whsec_[A-Za-z0-9]{40}$/);
  // A retry with the same key answers the same endpoint and the same secret; no second endpoint.
  const retried = await t.api("POST", "/v1/webhook-endpoints", { url: r.url, events: ["wallet.*"] }, { as: app, key });
  expect(retried).toMatchObject({ status: 201, body: first.body });
  const conflict = await t.api("POST", "/v1/webhook-endpoints", { url: r.url, events: ["wallet.paid"] }, { as: app, key });
  expect({ status: conflict.status, code: conflict.body.code }).toEqual({ status: 422, code: "IDEMPOTENCY_CONFLICT" });
  expect((await t.node.db`select count(*)::int as n from webhook_endpoints where owner = ${`service:${app.sub}`}`)[0]!.n).toBe(1);
  // Another registration gets another secret.
  const other = await register(t, r.url, ["wallet.paid"], app);
  expect(other.secret).not.toBe(secret);

  // Traffic: events, failed and successful attempts, reads of every kind.
  const wallet = await t.api("POST", "/v1/wallets", { ownerId: "owner-secret", asset: "USD" });
  await t.api("POST", `/v1/wallets/${wallet.body.id}/credits`, { amount: "4.00" });
  await t.api("POST", `/v1/wallets/${wallet.body.id}/payments`, { amount: "1.00" });
  // Three events to the first endpoint, the payment to the other as well.
  await waitFor("every event delivered", () => new Set(r.accepted().map((x) => x.headers.get("coffer-delivery-id"))).size === 4);
  expect(await t.node.webhookDelivery.idle()).toBe(true);
  const reads = [
    await t.api("GET", `/v1/webhook-endpoints/${first.body.id}`, undefined, { as: app }),
    await t.api("GET", "/v1/webhook-endpoints", undefined, { as: app }),
    await t.api("GET", "/v1/webhook-endpoints"),
    await t.api("GET", `/v1/webhook-endpoints/${first.body.id}/deliveries`, undefined, { as: app }),
    await t.api("POST", `/v1/webhook-endpoints/${first.body.id}/disable`, {}, { as: app }),
    await t.api("POST", `/v1/webhook-endpoints/${first.body.id}/enable`, {}, { as: app }),
  ];
  for (const res of reads) expect(res.status).toBe(200);
  const log = await deliveryLog(t, first.body.id, app);
  expect(log.flatMap((d) => d.attempts).some((a) => a.error === "http_5xx")).toBe(true);

  const shown = [...reads.map((res) => JSON.stringify(res.body)), JSON.stringify(log)];
  for (const text of shown) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain("whsec_");
  }
  // Never in what is sent (only its signature is).
  for (const x of r.requests) {
    expect(x.raw).not.toContain(secret);
    expect([...x.headers.values()].join("\n")).not.toContain(secret);
  }
  // Never in a log line, at debug level.
  expect(printed().length).toBeGreaterThan(0);
  expect(printed().filter((line) => line.includes(secret) || line.includes(other.secret) || line.includes("whsec_"))).toEqual([]);
  // At rest: sealed in the endpoint's row and in the idempotency record that replays it.
  const rows = await t.node.db`select secret_sealed::text as sealed from webhook_endpoints`;
  for (const row of rows) expect(row.sealed).not.toContain("whsec_");
  const records = await t.node.db`select body::text as body from idempotency_keys where scope = ${`service:${app.sub}`}`;
  expect(records.length).toBeGreaterThan(0);
  for (const row of records) expect(row.body).not.toContain("whsec_");
}, 30_000);
