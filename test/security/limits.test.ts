import { afterAll, beforeAll, expect, test } from "bun:test";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/** Input limits and the headers every answer carries, success or failure. */
let t: TestNode;
let wallet: string;
beforeAll(async () => {
  t = await startTestNode("limits");
  wallet = await fundedWallet(t.api, "USD", "10.00");
});
afterAll(() => t.stop());

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

test("a 10 MB body is refused with 413 before anything is parsed", async () => {
  const res = await t.api("POST", `/v1/wallets/${wallet}/payments`, undefined, { raw: "x".repeat(10 * 1024 * 1024) });
  expect(res.status).toBe(413);
  expect(res.body.code).toBe("PAYLOAD_TOO_LARGE");
});

test("JSON nested 100 deep is a 400, and so is 17 deep; 16 deep reaches the schema", async () => {
  for (const depth of [100, 17]) {
    const res = await t.api("POST", `/v1/wallets/${wallet}/payments`, undefined, { raw: `{"amount": ${nested(depth - 1)}}` });
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain("nested deeper");
  }
  const shallow = await t.api("POST", `/v1/wallets/${wallet}/payments`, undefined, { raw: `{"amount": ${nested(15)}}` });
  expect(shallow.status).toBe(400);
  expect(shallow.body.detail).not.toContain("nested deeper");
  expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.posted).toBe("10.00");
});

test("every answer carries the security headers and a request id, errors included", async () => {
  const answers = [
    await t.api("GET", `/v1/wallets/${wallet}`),
    await t.api("GET", "/health", undefined, { token: null }),
    await t.api("GET", `/v1/wallets/${wallet}`, undefined, { token: null }),
    await t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: "-1" }),
    await t.api("GET", "/no/such/route"),
  ];
  expect(answers.map((a) => a.status)).toEqual([200, 200, 401, 400, 404]);
  for (const a of answers) {
    expect(a.headers.get("x-content-type-options")).toBe("nosniff");
    expect(a.headers.get("x-frame-options")).toBe("DENY");
    expect(a.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(a.headers.get("strict-transport-security")).toContain("max-age=");
    expect(a.headers.get("cache-control")).toBe("no-store");
    expect(a.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers.get("access-control-allow-origin")).toBeNull();
  }
});

test("CORS stays off unless origins are configured, and then allows only those", async () => {
  const preflight = (origin: string) => ({ headers: { origin, "access-control-request-method": "POST" }, token: null });
  expect((await t.api("OPTIONS", "/v1/wallets", undefined, preflight("https://evil.example"))).headers.get("access-control-allow-origin")).toBeNull();
  const withCors = await startTestNode("cors", { CORS_ORIGINS: "https://app.example" });
  try {
    const allowed = await withCors.api("OPTIONS", "/v1/wallets", undefined, preflight("https://app.example"));
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const other = await withCors.api("OPTIONS", "/v1/wallets", undefined, preflight("https://evil.example"));
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  } finally {
    await withCors.stop();
  }
});
