import { afterAll, beforeAll, expect, test } from "bun:test";
import { fundedWallet, startTestNode, type TestNode } from "./support/node";

let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("smoke");
});
afterAll(() => t.stop());

test("a funded wallet pays and reports its balance with the asset's scale", async () => {
  const id = await fundedWallet(t.api, "USD", "10");
  const paid = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.5" });
  expect(paid.status).toBe(201);
  const wallet = await t.api("GET", `/v1/wallets/${id}`);
  expect(wallet.body.balance).toEqual({ posted: "7.50", held: "0.00", available: "7.50" });
});
