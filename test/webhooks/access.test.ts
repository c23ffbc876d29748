import { afterAll, beforeAll, expect, test } from "bun:test";
import type { As } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { appService, register } from "./support";

/**
 * Who sees which endpoint (lib/policy.ts webhooks.read / webhooks.manage; src/webhooks/endpoints.ts):
 * a service only the endpoints it registered (another's answers 404 exactly like a missing one,
 * and its list leaves them out); admins and auditors every one, auditors without changing any;
 * users none at all. The table-driven suites (test/security/ownership.test.ts, transports, hostile)
 * cover every operation with every kind of caller through test/support/operations.ts.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("webhookaccess", { COFFER_TEST_STRIPE: "off" });
});
afterAll(() => t?.stop());

const URL = "https://hooks.coffer.invalid/coffer";
const AUDITOR: As = { sub: "auditor-1", role: "auditor" };
const USER: As = { sub: "user-1", role: "user" };

test("a service sees and manages only its own endpoints; admins and auditors see all; users none", async () => {
  const [a, b] = [appService("app-a"), appService("app-b")];
  const mine = await register(t, URL, ["wallet.*"], a);
  const theirs = await register(t, URL, ["chama.*"], b);

  const listOf = async (as: As) => (await t.api("GET", "/v1/webhook-endpoints", undefined, { as })).body.items.map((e: any) => e.id);
  expect(await listOf(a)).toEqual([mine.id]);
  expect(await listOf(b)).toEqual([theirs.id]);
  expect((await listOf(AUDITOR)).sort()).toEqual([mine.id, theirs.id].sort());

  const ghost = crypto.randomUUID();
  for (const [method, path] of [
    ["GET", `/v1/webhook-endpoints/${theirs.id}`],
    ["GET", `/v1/webhook-endpoints/${theirs.id}/deliveries`],
    ["POST", `/v1/webhook-endpoints/${theirs.id}/disable`],
    ["POST", `/v1/webhook-endpoints/${theirs.id}/enable`],
  ] as const) {
    const res = await t.api(method, path, method === "POST" ? {} : undefined, { as: a });
    const missing = await t.api(method, path.replace(theirs.id, ghost), method === "POST" ? {} : undefined, { as: a });
    expect({ path, status: res.status, code: res.body.code, detail: res.body.detail }).toEqual({ path, status: 404, code: "NOT_FOUND", detail: missing.body.detail });
  }
  expect((await t.api("GET", `/v1/webhook-endpoints/${theirs.id}`, undefined, { as: b })).body.status).toBe("enabled");

  // An admin manages anyone's; an auditor reads and changes nothing; a user has no webhooks at all.
  expect((await t.api("POST", `/v1/webhook-endpoints/${theirs.id}/disable`, {})).body.status).toBe("disabled");
  expect((await t.api("GET", `/v1/webhook-endpoints/${theirs.id}`, undefined, { as: AUDITOR })).body.status).toBe("disabled");
  expect((await t.api("POST", `/v1/webhook-endpoints/${theirs.id}/enable`, {}, { as: AUDITOR })).status).toBe(403);
  for (const [method, path] of [
    ["GET", "/v1/webhook-endpoints"],
    ["POST", "/v1/webhook-endpoints"],
    ["GET", `/v1/webhook-endpoints/${mine.id}`],
  ] as const) {
    const body = method === "POST" ? { url: URL, events: ["wallet.*"] } : undefined;
    expect((await t.api(method, path, body, { as: USER })).status).toBe(403);
  }
  // The owner is who registered it, whatever the body says (there is no owner field to give).
  const spoof = await t.api("POST", "/v1/webhook-endpoints", { url: URL, events: ["wallet.*"], owner: `service:${b.sub}` }, { as: a });
  expect(spoof.status).toBe(400);
});

test("enabled endpoints per owner are bounded", async () => {
  const capped = await startTestNode("webhookcap", { COFFER_TEST_STRIPE: "off", WEBHOOK_ENDPOINTS_MAX: "2" });
  try {
    const app = appService("capped");
    const first = await register(capped, URL, ["wallet.*"], app);
    await register(capped, URL, ["wallet.*"], app);
    const third = await capped.api("POST", "/v1/webhook-endpoints", { url: URL, events: ["wallet.*"] }, { as: app });
    expect({ status: third.status, code: third.body.code }).toEqual({ status: 422, code: "LIMIT_EXCEEDED" });
    // Another owner has its own allowance; disabling one makes room.
    expect((await capped.api("POST", "/v1/webhook-endpoints", { url: URL, events: ["wallet.*"] }, { as: appService("other") })).status).toBe(201);
    await capped.api("POST", `/v1/webhook-endpoints/${first.id}/disable`, {}, { as: app });
    expect((await capped.api("POST", "/v1/webhook-endpoints", { url: URL, events: ["wallet.*"] }, { as: app })).status).toBe(201);
    // …and enabling it again is refused while the others are on.
    const back = await capped.api("POST", `/v1/webhook-endpoints/${first.id}/enable`, {}, { as: app });
    expect({ status: back.status, code: back.body.code }).toEqual({ status: 422, code: "LIMIT_EXCEEDED" });
  } finally {
    await capped.stop();
  }
});
