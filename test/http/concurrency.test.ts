import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { bounded } from "../support/bounded";
import { verifyIsClean } from "../support/ledger";
import { cents, usd } from "../support/money";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { seeded } from "../support/random";

/**
 * Many callers at once, through real HTTP, against one node on a real Postgres. The actor must
 * serialize each wallet's commands, so no interleaving can spend the same cent twice, and the
 * transfer saga must finish every transfer it started.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("concurrency");
});
afterAll(() => t.stop());

const BANK = { type: "bank", account: "DE89 3704 0044 0532 0130 00" } as const;

async function balanceOf(walletId: string): Promise<{ posted: string; held: string; available: string }> {
  const res = await t.api("GET", `/v1/wallets/${walletId}`);
  expect(res.status).toBe(200);
  return res.body.balance;
}

async function sagaSettles(): Promise<void> {
  expect(await t.node.saga.idle(30_000)).toBe(true);
}

describe("simultaneous payments on one wallet", () => {
  for (const [attempts, affordable] of [
    [10, 7],
    [200, 123],
  ] as const) {
    test(`${attempts} payments at once on a wallet funded for ${affordable} of them: exactly ${affordable} succeed and the balance never goes below zero`, async () => {
      const id = await fundedWallet(t.api, "USD", `${affordable}.00`);
      const answers = await Promise.all(
        Array.from({ length: attempts }, (_, i) => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00", reference: `p-${i}` })),
      );

      const paid = answers.filter((a) => a.status === 201);
      const refused = answers.filter((a) => a.status !== 201);
      expect(paid.length).toBe(affordable);
      expect(refused.length).toBe(attempts - affordable);
      for (const r of refused) {
        expect(r.status).toBe(409);
        expect(r.body.code).toBe("INSUFFICIENT_FUNDS");
      }
      // Each success reports the balance right after it: every one of them is at or above zero and
      // they are all different (no two payments saw the same starting balance).
      const after = paid.map((p) => cents(p.body.balance.available));
      for (const a of after) expect(a >= 0n).toBe(true);
      expect(new Set(after).size).toBe(affordable);

      expect(await balanceOf(id)).toEqual({ posted: "0.00", held: "0.00", available: "0.00" });
      const history = await t.api("GET", `/v1/wallets/${id}/transactions?limit=200`);
      expect(history.body.items.filter((i: { kind: string }) => i.kind === "payment").length).toBe(affordable);
      await verifyIsClean(t);
    });
  }
});

test("300 transfers A→B and B→A fired in parallel all answer, all settle and conserve the total", async () => {
  // Each side sends at most 150 × 1.00 from 200.00, so every reserve is covered whatever the order.
  const a = await fundedWallet(t.api, "USD", "200.00");
  const b = await fundedWallet(t.api, "USD", "200.00");
  const random = seeded(2);
  const orders = Array.from({ length: 300 }, (_, i) => {
    const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
    return { fromWalletId: from, toWalletId: to, amount: usd(BigInt(1 + Math.floor(random() * 100))) };
  });
  const answers = await Promise.all(orders.map((o) => t.api("POST", "/v1/transfers", o)));

  expect(answers.filter((r) => r.status !== 201).map((r) => r.body)).toEqual([]);
  for (const r of answers) expect(r.body.status).toBe("pending");
  expect(new Set(answers.map((r) => r.body.id)).size).toBe(300);

  await sagaSettles();
  // Both wallets stay active, so no credit is ever refused: every transfer ends settled.
  const finals = await Promise.all(answers.map((r) => t.api("GET", `/v1/transfers/${r.body.id}`)));
  expect(finals.filter((f) => f.body.status !== "settled").map((f) => f.body)).toEqual([]);

  const aToB = orders.filter((o) => o.fromWalletId === a).reduce((sum, o) => sum + cents(o.amount), 0n);
  const bToA = orders.filter((o) => o.fromWalletId === b).reduce((sum, o) => sum + cents(o.amount), 0n);
  const [ba, bb] = await Promise.all([balanceOf(a), balanceOf(b)]);
  expect(cents(ba.posted)).toBe(20_000n - aToB + bToA);
  expect(cents(bb.posted)).toBe(20_000n - bToA + aToB);
  expect(ba.held).toBe("0.00");
  expect(bb.held).toBe("0.00");
  await verifyIsClean(t);
});

test("50 withdrawals of 1.00 at once on 20.00: exactly 20 are requested and hold the whole balance", async () => {
  const id = await fundedWallet(t.api, "USD", "20.00");
  const answers = await Promise.all(
    Array.from({ length: 50 }, () => t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "1.00", destination: BANK })),
  );
  const requested = answers.filter((a) => a.status === 201);
  expect(requested.length).toBe(20);
  for (const r of requested) expect(r.body.status).toBe("requested");
  expect(new Set(requested.map((r) => r.body.id)).size).toBe(20);
  for (const r of answers.filter((a) => a.status !== 201)) {
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 409, code: "INSUFFICIENT_FUNDS" });
  }
  expect(await balanceOf(id)).toEqual({ posted: "20.00", held: "20.00", available: "0.00" });
  await verifyIsClean(t);
});

describe("a 500-operation random mix over 20 wallets", () => {
  test("never answers 5xx, and afterwards the books add up to what the callers were told", async () => {
    const random = seeded(500);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const amount = (maxCents: number) => usd(BigInt(1 + Math.floor(random() * maxCents)));

    const wallets = await Promise.all(Array.from({ length: 20 }, (_, i) => fundedWallet(t.api, "USD", "50.00", `mix-${i}`)));
    let credited = 20n * 5_000n;
    let paid = 0n;
    let withdrawn = 0n;
    let completions = 0;
    const withdrawals: { id: string; amount: bigint }[] = [];
    const transfers: string[] = [];
    const unexpected: { op: string; status: number; body: unknown }[] = [];
    const seen = new Set<string>();

    /** Anything other than success or a business refusal is a bug (a 5xx above all). */
    const check = (op: string, r: ApiResponse, ok: number, refusals: string[]) => {
      seen.add(r.status === ok ? op : `${op}:${r.body.code}`);
      if (r.status === ok) return true;
      if (!(r.status === 409 && refusals.includes(r.body.code))) unexpected.push({ op, status: r.status, body: r.body });
      return false;
    };

    const operation = async (): Promise<void> => {
      const roll = random();
      const wallet = pick(wallets);
      if (roll < 0.15) {
        const r = await t.api("POST", `/v1/wallets/${wallet}/credits`, { amount: amount(2_000) });
        if (check("credit", r, 201, ["WALLET_FROZEN"])) credited += cents(r.body.amount);
      } else if (roll < 0.35) {
        const r = await t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: amount(1_000) });
        if (check("payment", r, 201, ["WALLET_FROZEN", "INSUFFICIENT_FUNDS"])) paid += cents(r.body.amount);
      } else if (roll < 0.5) {
        const r = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: amount(1_000), destination: BANK });
        if (check("withdrawal", r, 201, ["WALLET_FROZEN", "INSUFFICIENT_FUNDS"])) withdrawals.push({ id: r.body.id, amount: cents(r.body.amount) });
      } else if (roll < 0.7) {
        if (!withdrawals.length) return;
        const w = pick(withdrawals);
        const step = pick(["process", "complete", "fail", "cancel"] as const);
        const r = await t.api("POST", `/v1/withdrawals/${w.id}/${step}`, step === "fail" ? { reason: "bank said no" } : undefined);
        if (check(step, r, 200, ["INVALID_TRANSITION"]) && step === "complete") {
          withdrawn += w.amount;
          completions++;
        }
      } else if (roll < 0.9) {
        const to = pick(wallets.filter((w) => w !== wallet));
        const r = await t.api("POST", "/v1/transfers", { fromWalletId: wallet, toWalletId: to, amount: amount(1_500) });
        if (check("transfer", r, 201, ["WALLET_FROZEN", "INSUFFICIENT_FUNDS"])) transfers.push(r.body.id);
      } else {
        const action = pick(["freeze", "unfreeze"] as const);
        const r = await t.api("POST", `/v1/wallets/${wallet}/${action}`);
        check(action, r, 200, ["INVALID_TRANSITION"]);
      }
    };

    let issued = 0;
    await bounded(16, () => (issued++ < 500 ? operation() : undefined));
    expect(unexpected).toEqual([]);
    // The mix is only worth something if every kind of operation went through at least once.
    for (const op of ["credit", "payment", "withdrawal", "process", "complete", "fail", "cancel", "transfer", "freeze", "unfreeze"]) {
      expect(seen.has(op)).toBe(true);
    }

    await sagaSettles();
    const [balances, withdrawalRows, transferRows] = await Promise.all([
      Promise.all(wallets.map(balanceOf)),
      Promise.all(withdrawals.map((w) => t.api("GET", `/v1/withdrawals/${w.id}`))),
      Promise.all(transfers.map((id) => t.api("GET", `/v1/transfers/${id}`))),
    ]);

    expect(transferRows.filter((r) => !["settled", "voided"].includes(r.body.status)).map((r) => r.body)).toEqual([]);
    expect(withdrawalRows.filter((r) => r.body.status === "completed").length).toBe(completions);
    const stillHeld = withdrawalRows
      .filter((r) => r.body.status === "requested" || r.body.status === "processing")
      .reduce((sum, r) => sum + cents(r.body.amount), 0n);

    const postedTotal = balances.reduce((sum, b) => sum + cents(b.posted), 0n);
    const heldTotal = balances.reduce((sum, b) => sum + cents(b.held), 0n);
    expect(postedTotal).toBe(credited - paid - withdrawn);
    expect(heldTotal).toBe(stillHeld);
    for (const b of balances) expect(cents(b.available) >= 0n).toBe(true);
    await verifyIsClean(t);
  });
});
