import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Stripe from "stripe";
import { signatureHeader, verifySignature } from "../../src/webhooks/signing";
import { WebhookDelivery } from "../../src/workers/webhook-delivery";
import { startTestNode, type TestNode } from "../support/node";
import { ALWAYS_OK, appService, deliveryLog, register, startReceiver, waitFor, WEBHOOK_TEST_ENV, type Receiver } from "./support";

/**
 * Webhooks out, end to end: a real node, a real local HTTP receiver that fails, times out and
 * answers slowly, and events made through the API. Each test registers its own endpoint (as its
 * own app) and its own wallets, so what one receiver gets is exactly what its test caused.
 */
let t: TestNode;
const receivers: Receiver[] = [];

beforeAll(async () => {
  t = await startTestNode("webhooks", WEBHOOK_TEST_ENV);
});
afterAll(async () => {
  for (const r of receivers) await r.stop();
  await t?.stop();
});

function receiver(...args: Parameters<typeof startReceiver>): Receiver {
  const r = startReceiver(...args);
  receivers.push(r);
  return r;
}

async function created(path: string, body: unknown): Promise<any> {
  const res = await t.api("POST", path, body);
  if (res.status !== 201 && res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A USD wallet that was opened, credited three times and paid once: five `wallet.*` events. */
async function busyWallet(owner: string): Promise<string> {
  const id = (await created("/v1/wallets", { ownerId: owner, asset: "USD" })).id as string;
  for (const amount of ["1.00", "2.00", "3.00"]) await created(`/v1/wallets/${id}/credits`, { amount });
  await created(`/v1/wallets/${id}/payments`, { amount: "0.50" });
  return id;
}

/** The committed events of these aggregates, in commit order: what an endpoint subscribed to them must get. */
async function committed(aggregates: string[], like = "wallet.%"): Promise<{ id: string; aggregate_id: string; type: string }[]> {
  return (await t.node.db`select id, aggregate_id, type from events where aggregate_id in ${t.node.db(aggregates)} and type like ${like} order by seq`) as never;
}

const byAggregate = (ids: { id: string; aggregate_id: string }[], aggregate: string) =>
  ids.filter((e) => e.aggregate_id === aggregate).map((e) => e.id);

describe("delivery", () => {
  test("a receiver that fails 5 times then recovers gets every event once, in order per wallet, with valid signatures", async () => {
    const app = appService("fails-then-recovers");
    const r = receiver((_req, n) => ({ status: n <= 5 ? 503 : 200 }));
    const endpoint = await register(t, r.url, ["wallet.*"], app);
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9]{40}$/);

    const wallets = await Promise.all(["owner-1", "owner-2", "owner-3"].map(busyWallet));
    const events = await committed(wallets);
    expect(events).toHaveLength(15);
    await waitFor("every event accepted", () => new Set(r.accepted().map((x) => x.body.id)).size === events.length);
    expect(await t.node.webhookDelivery.idle(10_000)).toBe(true);

    // Every event once among the accepted requests (the five refused ones were retried, same id).
    const accepted = r.accepted();
    expect(accepted.map((x) => x.body.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(r.requests.filter((x) => x.status === 503)).toHaveLength(5);
    for (const refused of r.requests.filter((x) => x.status === 503)) expect(events.map((e) => e.id)).toContain(refused.body.id);
    // In order per wallet: each wallet's events were accepted in the order they were committed.
    for (const wallet of wallets) {
      expect(accepted.filter((x) => x.body.data.walletId === wallet).map((x) => x.body.id)).toEqual(byAggregate(events, wallet));
    }
    // The body: {id, type, created, data}, data as in the outbox (amounts in minor units), for this wallet.
    const first = accepted.find((x) => x.body.type === "wallet.opened")!;
    expect(Object.keys(first.body).sort()).toEqual(["created", "data", "id", "type"]);
    expect(first.body.data).toMatchObject({ type: "wallet.opened", asset: "USD" });
    expect(first.headers.get("content-type")).toBe("application/json");

    // Valid signatures, verified as an app would: our snippet, and Stripe's own verifier (the same scheme).
    for (const x of r.requests) {
      const header = x.headers.get("coffer-signature")!;
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifySignature(x.raw, header, endpoint.secret)).toBe(true);
      const event = await Stripe.webhooks.constructEventAsync(x.raw, header, endpoint.secret, 300);
      expect(event.id).toBe(x.body.id);
    }
    const sample = accepted[0]!;
    const header = sample.headers.get("coffer-signature")!;
    // The timestamp tolerance: the same signature ten minutes later is refused; a changed body or another secret never verifies.
    expect(verifySignature(sample.raw, header, endpoint.secret, { nowMs: Date.now() + 10 * 60_000 })).toBe(false);
    expect(verifySignature(sample.raw, header, endpoint.secret, { nowMs: Date.now() + 10 * 60_000, toleranceS: 3600 })).toBe(true);
    expect(verifySignature(sample.raw.replace(/"USD"|"1"/, '"EUR"'), header, endpoint.secret)).toBe(false);
    expect(verifySignature(sample.raw, header, "whsec_someoneelse0000000000000000000000000000")).toBe(false);
    expect(verifySignature(sample.raw, signatureHeader(endpoint.secret, sample.raw, Date.now() - 301_000), endpoint.secret)).toBe(false);

    // The delivery log: one delivery per event, delivered; five attempts in all failed with http_5xx.
    const log = await deliveryLog(t, endpoint.id, app);
    expect(log).toHaveLength(15);
    expect(log.every((d) => d.status === "delivered" && d.deliveredAt !== null && d.nextAttemptAt === null)).toBe(true);
    const attempts = log.flatMap((d) => d.attempts);
    expect(attempts.filter((a) => a.error === "http_5xx" && a.statusCode === 503)).toHaveLength(5);
    expect(attempts.filter((a) => a.error === null && a.statusCode === 200)).toHaveLength(15);
  }, 60_000);

  test("a failing event holds back the later events of its wallet for that endpoint, and no other wallet's", async () => {
    const app = appService("one-line-blocked");
    let healed = false;
    // Refuses everything of the wallet owner-blocked opened, from its first event on.
    const refusing = new Set<string>();
    const r = receiver((req) => {
      if (req.body.data.ownerId === "owner-blocked") refusing.add(req.body.data.walletId);
      return { status: !healed && refusing.has(req.body.data.walletId) ? 500 : 200 };
    });
    const endpoint = await register(t, r.url, ["wallet.*"], app);
    const blocked = await busyWallet("owner-blocked");
    const free = await busyWallet("owner-free");
    const events = await committed([blocked, free]);

    await waitFor("the free wallet's events", () => r.accepted().filter((x) => x.body.data.walletId === free).length === 5);
    // Meanwhile the blocked wallet's first event was tried again and again, and nothing after it at all.
    await waitFor("retries of the blocked head", () => r.requests.filter((x) => x.body.data.walletId === blocked).length >= 3);
    const tried = new Set(r.requests.filter((x) => x.body.data.walletId === blocked).map((x) => x.body.id));
    expect([...tried]).toEqual([byAggregate(events, blocked)[0]!]);

    healed = true;
    await waitFor("the blocked wallet's events", () => r.accepted().filter((x) => x.body.data.walletId === blocked).length === 5);
    expect(r.accepted().filter((x) => x.body.data.walletId === blocked).map((x) => x.body.id)).toEqual(byAggregate(events, blocked));
    expect(r.accepted().filter((x) => x.body.data.walletId === free).map((x) => x.body.id)).toEqual(byAggregate(events, free));
    expect(await t.node.webhookDelivery.idle()).toBe(true);
    expect((await deliveryLog(t, endpoint.id, app)).filter((d) => d.status !== "delivered")).toEqual([]);
  }, 60_000);

  test("a receiver that times out is retried; a slow one within the limit is delivered at the first attempt", async () => {
    const app = appService("slow");
    // WEBHOOK_TIMEOUT_MS is 400: the first answer comes too late, the second in time though slowly.
    const r = receiver((_req, n) => ({ status: 200, delayMs: n === 1 ? 1_500 : 250 }));
    const endpoint = await register(t, r.url, ["wallet.opened"], app);
    const wallet = (await created("/v1/wallets", { ownerId: "owner-slow", asset: "EUR" })).id as string;
    await waitFor("the delivery", async () => (await deliveryLog(t, endpoint.id, app)).some((d) => d.status === "delivered"));
    const [delivery] = await deliveryLog(t, endpoint.id, app);
    expect(delivery.aggregateId).toBe(wallet);
    expect(delivery.attempts.map((a: any) => ({ error: a.error, statusCode: a.statusCode }))).toEqual([
      { error: "timeout", statusCode: null },
      { error: null, statusCode: 200 },
    ]);
    expect(delivery.attempts[0].latencyMs).toBeGreaterThanOrEqual(350);
    expect(delivery.attempts[1].latencyMs).toBeGreaterThanOrEqual(200);
    // The receiver saw the same event twice (it did process the first one, late): the id is how it tells.
    expect(r.requests.map((x) => x.body.id)).toEqual([delivery.eventId, delivery.eventId]);
    expect(r.requests.map((x) => x.headers.get("coffer-delivery-attempt"))).toEqual(["1", "2"]);
  }, 30_000);

  test("attempts to one endpoint run in parallel across wallets, at most WEBHOOK_ENDPOINT_CONCURRENCY at once", async () => {
    const app = appService("parallel");
    let inFlight = 0;
    let most = 0;
    const r = receiver(() => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => inFlight--, 200);
      return { status: 200, delayMs: 200 };
    });
    await register(t, r.url, ["wallet.opened"], app);
    await Promise.all(Array.from({ length: 10 }, (_, i) => created("/v1/wallets", { ownerId: `owner-parallel-${i}`, asset: "USD" })));
    await waitFor("ten openings", () => r.accepted().length === 10);
    // Ten wallets are ten lines: they go out side by side, four at a time (the default bound per endpoint).
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
  }, 30_000);

  test("two nodes' workers share the deliveries: each event is sent once, in order per wallet", async () => {
    // A second worker on the same tables, as another node runs one: leases keep them from sending one delivery twice.
    const other = new WebhookDelivery(t.node.db, t.node.vault, t.node.webhooks.settings);
    try {
      const app = appService("two-nodes");
      const r = receiver(() => ({ status: 200, delayMs: 20 }));
      await register(t, r.url, ["wallet.*"], app);
      const wallets = await Promise.all(["owner-n1", "owner-n2", "owner-n3", "owner-n4"].map(busyWallet));
      const events = await committed(wallets);
      other.kick();
      await waitFor("every event", () => r.accepted().length >= events.length);
      expect(await t.node.webhookDelivery.idle()).toBe(true);
      expect(await other.idle()).toBe(true);
      expect(r.requests.map((x) => x.body.id).sort()).toEqual(events.map((e) => e.id).sort());
      for (const wallet of wallets) {
        expect(r.accepted().filter((x) => x.body.data.walletId === wallet).map((x) => x.body.id)).toEqual(byAggregate(events, wallet));
      }
    } finally {
      await other.stop();
    }
  }, 30_000);

  test("redirects are not followed: a 3xx is a failed attempt", async () => {
    const app = appService("redirects");
    const target = receiver(ALWAYS_OK);
    const r = receiver((_req, n) => ({ status: n === 1 ? 307 : 200 }));
    const endpoint = await register(t, r.url, ["wallet.opened"], app);
    await created("/v1/wallets", { ownerId: "owner-redirected", asset: "USD" });
    await waitFor("the delivery", async () => (await deliveryLog(t, endpoint.id, app)).some((d) => d.status === "delivered"));
    const [delivery] = await deliveryLog(t, endpoint.id, app);
    expect(delivery.attempts.map((a: any) => a.error)).toEqual(["redirect", null]);
    expect(target.requests).toHaveLength(0);
  }, 30_000);

  test("an endpoint gets only the types it subscribed to, and only events committed after it was registered", async () => {
    const app = appService("types");
    const r = receiver(ALWAYS_OK);
    const before = (await created("/v1/wallets", { ownerId: "owner-types", asset: "USD" })).id as string;
    await t.node.webhookDelivery.idle();
    const endpoint = await register(t, r.url, ["wallet.credited", "withdrawal.*"], app);
    await created(`/v1/wallets/${before}/credits`, { amount: "5.00" });
    const withdrawal = await created(`/v1/wallets/${before}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } });
    await created(`/v1/withdrawals/${withdrawal.id}/process`, {});
    await waitFor("three events", () => r.accepted().length === 3);
    expect(await t.node.webhookDelivery.idle()).toBe(true);
    expect(r.accepted().map((x) => [x.body.type, x.body.data.status ?? null])).toEqual([
      ["wallet.credited", null],
      ["withdrawal.changed", "requested"],
      ["withdrawal.changed", "processing"],
    ]);
    // Destinations never travel: not the account, not its masked form, not the field.
    for (const x of r.requests) {
      expect(x.raw).not.toContain("DE89");
      expect(x.raw).not.toContain("3000");
      expect(x.raw).not.toContain("destination");
      expect(x.raw).not.toContain("account");
    }
    expect((await deliveryLog(t, endpoint.id, app)).length).toBe(3);
  }, 30_000);
});

describe("redelivery", () => {
  test("a delivered event is sent again, with the same event id, beside the queue", async () => {
    const app = appService("redeliver");
    const r = receiver(ALWAYS_OK);
    const endpoint = await register(t, r.url, ["wallet.opened"], app);
    await created("/v1/wallets", { ownerId: "owner-redeliver", asset: "USD" });
    await waitFor("the first delivery", () => r.accepted().length === 1);
    expect(await t.node.webhookDelivery.idle()).toBe(true); // (its outcome recorded)
    const [original] = await deliveryLog(t, endpoint.id, app);
    expect(original.status).toBe("delivered");

    const key = `redeliver-${crypto.randomUUID()}`;
    const again = await t.api("POST", `/v1/webhook-deliveries/${original.id}/redeliver`, {}, { as: app, key });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ eventId: original.eventId, redeliveryOf: original.id, status: "pending", attempts: [] });
    // The same key answers the same redelivery, and sends nothing more.
    const replay = await t.api("POST", `/v1/webhook-deliveries/${original.id}/redeliver`, {}, { as: app, key });
    expect(replay.body).toEqual(again.body);

    await waitFor("the redelivery", () => r.accepted().length === 2);
    expect(await t.node.webhookDelivery.idle()).toBe(true);
    expect(r.accepted().map((x) => x.body.id)).toEqual([original.eventId, original.eventId]);
    expect(r.accepted()[1]!.raw).toBe(r.accepted()[0]!.raw);
    const log = await deliveryLog(t, endpoint.id, app);
    expect(log.map((d) => [d.id, d.status, d.redeliveryOf])).toEqual([
      [again.body.id, "delivered", original.id],
      [original.id, "delivered", null],
    ]);

    // Another app cannot redeliver it (it is not theirs: as if it did not exist), nor read the log.
    const stranger = appService("stranger");
    const refused = await t.api("POST", `/v1/webhook-deliveries/${original.id}/redeliver`, {}, { as: stranger });
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 404, code: "NOT_FOUND" });
    expect((await t.api("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries`, undefined, { as: stranger })).status).toBe(404);
    expect((await t.api("GET", `/v1/webhook-endpoints/${endpoint.id}`, undefined, { as: stranger })).status).toBe(404);
    expect((await t.api("GET", "/v1/webhook-endpoints", undefined, { as: stranger })).body.items).toEqual([]);
  }, 30_000);

  test("a disabled endpoint is not sent to, nor redelivered to, until it is enabled; then its queue resumes in order", async () => {
    const app = appService("paused");
    const r = receiver(ALWAYS_OK);
    const endpoint = await register(t, r.url, ["wallet.*"], app);
    const wallet = (await created("/v1/wallets", { ownerId: "owner-paused", asset: "USD" })).id as string;
    await waitFor("the first event", () => r.accepted().length === 1);
    const [first] = await deliveryLog(t, endpoint.id, app);

    const off = await t.api("POST", `/v1/webhook-endpoints/${endpoint.id}/disable`, {}, { as: app });
    expect(off.body).toMatchObject({ status: "disabled", disabledReason: "manual" });
    const refused = await t.api("POST", `/v1/webhook-deliveries/${first.id}/redeliver`, {}, { as: app });
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: "INVALID_TRANSITION" });
    await created(`/v1/wallets/${wallet}/credits`, { amount: "1.00" });
    await t.node.webhookDelivery.idle();
    await Bun.sleep(200);
    expect(r.requests).toHaveLength(1);

    const on = await t.api("POST", `/v1/webhook-endpoints/${endpoint.id}/enable`, {}, { as: app });
    expect(on.body).toMatchObject({ status: "enabled", disabledReason: null, disabledAt: null });
    await created(`/v1/wallets/${wallet}/credits`, { amount: "2.00" });
    await waitFor("the event after enabling", () => r.accepted().length === 2);
    // What was committed while it was disabled was not queued for it; what came after was.
    expect(r.accepted()[1]!.body.data.amount).toBe("200");
  }, 30_000);
});
