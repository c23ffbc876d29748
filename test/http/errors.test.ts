import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";

/**
 * What a refusal says: our own limits and ids exactly as Coffer wrote them, what it quotes of the
 * caller redacted where it is quoted, every field named the same way (`body.amount`) whichever
 * check found it, and a wrong method on a known path told as such.
 */
let t: TestNode;
beforeAll(async () => {
  // The default maximum (1 000 000 000 major units): a digit run the redactor would have masked.
  t = await startTestNode("errors");
});
afterAll(() => t.stop());

describe("details hold our own numbers exactly", () => {
  test("the over-maximum message shows the real maximum, in the detail and in the field's error", async () => {
    const wallet = await fundedWallet(t.api, "USD", "1.00");
    const res = await t.api("POST", `/v1/wallets/${wallet}/credits`, { amount: "1000000000.01" });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.detail).toBe("invalid input: body.amount: amount exceeds the maximum of 1000000000.00");
    expect(res.body.errors).toEqual([{ path: "body.amount", message: "amount exceeds the maximum of 1000000000.00" }]);
  });
});

describe("what a detail quotes of the caller is still redacted", () => {
  test("an unknown field named with a card-like digit string is masked to its last four", async () => {
    const wallet = await fundedWallet(t.api, "USD", "1.00");
    const res = await t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: "1.00", "4111111111111111": "x" });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors).toEqual([{ path: "body", message: "unknown field: ****1111" }]);
    expect(JSON.stringify(res.body)).not.toContain("4111111111111111");
  });

  test("an account number given in the wrong field is never repeated back", async () => {
    const wallet = await fundedWallet(t.api, "USD", "5.00");
    const account = "DE89370400440532013000";
    const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: { type: "bank", iban: account } });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors).toContainEqual({ path: "body.destination", message: "unknown field: iban" });
    expect(JSON.stringify(res.body)).not.toContain("0532013000");
  });

  test("a member id that is a phone number is masked in the refusal that names it", async () => {
    const p = await t.api("POST", "/v1/chamas", { name: "phones", asset: "USD", adminId: "admin-1" });
    const res = await t.api("POST", `/v1/chamas/${p.body.id}/deposits`, { memberId: "254712345678", amount: "1.00" });
    expectProblem(res, 404, "MEMBER_NOT_FOUND");
    expect(res.body.detail).toBe("no member ****5678 in this chama");
  });
});

describe("one form of field path", () => {
  test("a field refused by the schema and one refused for the wallet's asset both say body.<field>", async () => {
    const wallet = await fundedWallet(t.api, "USD", "1.00");
    const schema = await t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: 5 });
    const asset = await t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: "0.001" });
    expect(schema.body.errors.map((e: { path: string }) => e.path)).toEqual(["body.amount"]);
    expect(asset.body.errors).toEqual([{ path: "body.amount", message: "USD allows at most 2 decimals" }]);
  });

  test("a chama rule's amount names its own field", async () => {
    const c = await t.api("POST", "/v1/chamas", { name: "rules", asset: "KES", adminId: "rule-admin" });
    const res = await t.api("POST", `/v1/chamas/${c.body.id}/rules`, { maxPerDay: "1.001" }, { as: { sub: "rule-admin", role: "user" } });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors).toEqual([{ path: "body.maxPerDay", message: "KES allows at most 2 decimals" }]);
  });
});

describe("a known path with the wrong method", () => {
  test("answers 405 with the methods it takes in Allow", async () => {
    const wallet = await fundedWallet(t.api, "USD");
    const cases: [string, string, string][] = [
      ["DELETE", `/v1/wallets/${wallet}`, "GET, HEAD"],
      ["GET", `/v1/wallets/${wallet}/payments`, "POST"],
      ["PUT", `/v1/transfers/${crypto.randomUUID()}`, "GET, HEAD"],
      ["POST", "/health", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await t.api(method, path, method === "GET" ? undefined : {});
      expectProblem(res, 405, "METHOD_NOT_ALLOWED");
      expect(res.headers.get("allow")).toBe(allow);
    }
  });

  test("a path no route serves is still 404, and so is one a route declines with its own method", async () => {
    expectProblem(await t.api("GET", "/v1/nowhere"), 404, "NOT_FOUND");
    expectProblem(await t.api("GET", "/docs/not-a-docs-file"), 404, "NOT_FOUND");
    expectProblem(await t.api("DELETE", `/v1/wallets/${crypto.randomUUID()}/nothing`), 404, "NOT_FOUND");
  });
});
