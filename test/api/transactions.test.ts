import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestNode, type TestNode } from "../support/node";

/**
 * A wallet's transactions can be traced: each item names what it belongs to (the credit, payment,
 * withdrawal or transfer its caller knows by id, and which kind that is) and the posted balance
 * right after it, exact whichever page it is on.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("transactions");
});
afterAll(() => t.stop());

async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const res = await t.api(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Every item, newest first, following cursors `limit` at a time (bounded). */
async function allTransactions(walletId: string, limit: number): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res: any = await ok("GET", `/v1/wallets/${walletId}/transactions?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...res.items);
    cursor = res.nextCursor;
    if (!cursor) return items;
  }
  throw new Error("more than 100 pages");
}

const cents = (decimal: string) => BigInt(decimal.replace(".", ""));

describe("each item names its source and the balance after it", () => {
  test("after a credit, a payment, a completed withdrawal, a transfer out, one voided and one in", async () => {
    const wallet = (await ok("POST", "/v1/wallets", { ownerId: "traced", asset: "USD" })).id as string;
    const other = (await ok("POST", "/v1/wallets", { ownerId: "other", asset: "USD" })).id as string;
    await ok("POST", `/v1/wallets/${other}/credits`, { amount: "50.00" });

    const credit = await ok("POST", `/v1/wallets/${wallet}/credits`, { amount: "100.00", reference: "topup" });
    const payment = await ok("POST", `/v1/wallets/${wallet}/payments`, { amount: "7.25" });
    const withdrawal = await ok("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "10.00", destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } });
    await ok("POST", `/v1/withdrawals/${withdrawal.id}/process`);
    await ok("POST", `/v1/withdrawals/${withdrawal.id}/complete`);
    const out = await ok("POST", "/v1/transfers", { fromWalletId: wallet, toWalletId: other, amount: "5.00" });
    expect(await t.node.saga.idle()).toBe(true);
    await ok("POST", `/v1/wallets/${other}/freeze`);
    const refused = await ok("POST", "/v1/transfers", { fromWalletId: wallet, toWalletId: other, amount: "3.00" });
    expect(await t.node.saga.idle()).toBe(true);
    expect((await ok("GET", `/v1/transfers/${refused.id}`)).status).toBe("voided");
    await ok("POST", `/v1/wallets/${other}/unfreeze`);
    const back = await ok("POST", "/v1/transfers", { fromWalletId: other, toWalletId: wallet, amount: "20.00" });
    expect(await t.node.saga.idle()).toBe(true);

    const items = await allTransactions(wallet, 50);
    const oldestFirst = [...items].reverse();
    expect(oldestFirst.map((i) => [i.kind, i.source.kind, i.source.id, i.amount])).toEqual([
      ["credit", "credit", credit.id, "100.00"],
      ["payment", "payment", payment.id, "-7.25"],
      ["withdrawal", "withdrawal", withdrawal.id, "-10.00"],
      ["transfer_reserve", "transfer", out.id, "-5.00"],
      ["transfer_reserve", "transfer", refused.id, "-3.00"],
      ["transfer_void", "transfer", refused.id, "3.00"],
      ["transfer_credit", "transfer", back.id, "20.00"],
    ]);
    // The balance after each is the running sum of the amounts, oldest first, and the last is the wallet's.
    let running = 0n;
    for (const item of oldestFirst) {
      running += cents(item.amount);
      expect({ id: item.id, balanceAfter: cents(item.balanceAfter) }).toEqual({ id: item.id, balanceAfter: running });
    }
    expect(oldestFirst.at(-1)!.balanceAfter).toBe((await ok("GET", `/v1/wallets/${wallet}`)).balance.posted);
    expect(oldestFirst.at(-1)!.balanceAfter).toBe("97.75");
    // The source ids lead to the objects: the credit and payment by their journal, the others by their own reads.
    expect(credit.id).toBe(oldestFirst[0].id);
    expect((await ok("GET", `/v1/withdrawals/${oldestFirst[2].source.id}`)).status).toBe("completed");
    expect((await ok("GET", `/v1/transfers/${oldestFirst[6].source.id}`)).status).toBe("settled");
  });

  test("the balance after is the same on every page, whatever the page size", async () => {
    const wallet = (await ok("POST", "/v1/wallets", { ownerId: "paged", asset: "USD" })).id as string;
    for (let i = 1; i <= 12; i++) await ok("POST", `/v1/wallets/${wallet}/${i % 3 === 0 ? "payments" : "credits"}`, { amount: `${i}.00` });
    const whole = await allTransactions(wallet, 200);
    expect(whole).toHaveLength(12);
    for (const size of [1, 2, 5, 11]) expect(await allTransactions(wallet, size)).toEqual(whole);
    let running = 0n;
    for (const item of [...whole].reverse()) {
      running += cents(item.amount);
      expect(cents(item.balanceAfter)).toBe(running);
    }
  });
});
