import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADMIN, callerFor, tokenFor } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";

/**
 * Every POST carries an Idempotency-Key. The same key with the same request has one effect and
 * always answers the first answer; with another request it is a 422 and changes nothing.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("idempotency");
});
afterAll(() => t.stop());

const BANK = { type: "bank", account: "DE89 3704 0044 0532 0130 00" } as const;
const key = () => `key-${crypto.randomUUID()}`;

function fiveAtOnce(send: () => Promise<ApiResponse>): Promise<ApiResponse[]> {
  return Promise.all(Array.from({ length: 5 }, send));
}

function expectAllIdentical(answers: ApiResponse[]): void {
  for (const a of answers) expect({ status: a.status, body: a.body }).toEqual({ status: answers[0]!.status, body: answers[0]!.body });
}

async function walletRow(id: string) {
  const res = await t.api("GET", `/v1/wallets/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function kindsOf(walletId: string): Promise<string[]> {
  const res = await t.api("GET", `/v1/wallets/${walletId}/transactions?limit=200`);
  expect(res.status).toBe(200);
  return res.body.items.map((i: { kind: string }) => i.kind);
}

/** Row counts of every table a write could touch: "nothing written" means none of them moved. */
async function footprint() {
  const [row] = await t.node.db`select
    (select count(*) from wallets)::int as wallets, (select count(*) from journals)::int as journals,
    (select count(*) from postings)::int as postings, (select count(*) from withdrawals)::int as withdrawals,
    (select count(*) from transfers)::int as transfers, (select count(*) from idempotency_keys)::int as keys,
    (select count(*) from events)::int as outbox`;
  return row as { wallets: number; journals: number; postings: number; withdrawals: number; transfers: number; keys: number; outbox: number };
}

describe("payments", () => {
  test("the same key sent 5 times at once debits once and gives 5 identical answers", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const k = key();
    const answers = await fiveAtOnce(() => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "3.00" }, { key: k }));
    expect(answers[0]!.status).toBe(201);
    expectAllIdentical(answers);
    expect((await walletRow(id)).balance.posted).toBe("7.00");
    expect(await kindsOf(id)).toEqual(["payment", "credit"]);
  });

  test("the same key and body later replays the first status and body without paying again", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const k = key();
    const first = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "4.00", reference: "order-1" }, { key: k });
    expect(first.status).toBe(201);
    await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    const again = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "4.00", reference: "order-1" }, { key: k });
    expect({ status: again.status, body: again.body }).toEqual({ status: first.status, body: first.body });
    expect((await walletRow(id)).balance.posted).toBe("5.00");
  });

  test("a replay still answers from Postgres after the wallet's actor was passivated", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const k = key();
    const first = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.00" }, { key: k });
    expect(first.status).toBe(201);
    t.node.host.passivateIdle(Date.now() + 24 * 3600_000);
    expect(t.node.host.inspect(id).loaded).toBe(false);
    const again = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.00" }, { key: k });
    expect({ status: again.status, body: again.body }).toEqual({ status: first.status, body: first.body });
    expect((await walletRow(id)).balance.posted).toBe("8.00");
    expect(await kindsOf(id)).toEqual(["payment", "credit"]);
  });

  test("a replay read back from Postgres is byte for byte the first answer", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const token = await tokenFor(ADMIN);
    const send = () =>
      fetch(`${t.baseUrl}/v1/wallets/${id}/payments`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": `bytes-${id}`, authorization: `Bearer ${token}` },
        body: JSON.stringify({ amount: "1.25", reference: "order-bytes" }),
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    const first = await send();
    t.node.host.passivateIdle(Date.now() + 24 * 3600_000);
    expect(await send()).toEqual(first);
  });

  test("a 409 refusal is replayed as a refusal even once the wallet could afford it", async () => {
    const id = await fundedWallet(t.api, "USD", "1.00");
    const k = key();
    const refused = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "5.00" }, { key: k });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("INSUFFICIENT_FUNDS");
    expect((await t.api("POST", `/v1/wallets/${id}/credits`, { amount: "10.00" })).status).toBe(201);
    const again = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "5.00" }, { key: k });
    expect({ status: again.status, body: again.body }).toEqual({ status: refused.status, body: refused.body });
    expect((await walletRow(id)).balance.posted).toBe("11.00");
  });

  test("the same key with a different body is a 422 IDEMPOTENCY_CONFLICT and changes nothing", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const k = key();
    expect((await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }, { key: k })).status).toBe(201);
    const before = await walletRow(id);
    const conflict = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.00" }, { key: k });
    expect(conflict.status).toBe(422);
    expect(conflict.body.code).toBe("IDEMPOTENCY_CONFLICT");
    expect(conflict.headers.get("content-type")).toContain("application/problem+json");
    expect(await walletRow(id)).toEqual(before);
    expect(await kindsOf(id)).toEqual(["payment", "credit"]);
  });

  test("the same key on another wallet's path is a 422 and that wallet is not debited", async () => {
    const a = await fundedWallet(t.api, "USD", "10.00");
    const b = await fundedWallet(t.api, "USD", "10.00");
    const k = key();
    expect((await t.api("POST", `/v1/wallets/${a}/payments`, { amount: "1.00" }, { key: k })).status).toBe(201);
    const before = await walletRow(b);
    const other = await t.api("POST", `/v1/wallets/${b}/payments`, { amount: "1.00" }, { key: k });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("IDEMPOTENCY_CONFLICT");
    expect(await walletRow(b)).toEqual(before);
    expect(await kindsOf(b)).toEqual(["credit"]);
    expect((await walletRow(a)).balance.posted).toBe("9.00");
  });
});

describe("one key sent to many wallets at the same moment", () => {
  test("has exactly one effect: one 201, the rest 422, and only one wallet debited", async () => {
    const wallets = await Promise.all(Array.from({ length: 20 }, () => fundedWallet(t.api, "USD", "10.00")));
    const k = key();
    // Sent in the same tick through the in-process API, so several wallets' batches are committed
    // together in one group: the shared key must still count once.
    const answers = await Promise.all(wallets.map((id) => t.node.ops.pay(callerFor(ADMIN), k, id, { amount: "1.00" })));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 422 && a.body.code === "IDEMPOTENCY_CONFLICT")).toHaveLength(19);
    const posted = await Promise.all(wallets.map(async (id) => (await walletRow(id)).balance.posted));
    expect(posted.filter((p) => p === "9.00")).toHaveLength(1);
    expect(posted.filter((p) => p === "10.00")).toHaveLength(19);
  });
});

describe("a POST without an Idempotency-Key", () => {
  test("is a 400 IDEMPOTENCY_KEY_REQUIRED on every route and writes nothing", async () => {
    const wallet = await fundedWallet(t.api, "USD", "10.00");
    const other = await fundedWallet(t.api, "USD");
    const w = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK });
    expect(w.status).toBe(201);
    const before = { rows: await footprint(), wallet: await walletRow(wallet), other: await walletRow(other) };

    const attempts: [string, unknown][] = [
      ["/v1/wallets", { ownerId: "no-key", asset: "USD" }],
      [`/v1/wallets/${wallet}/credits`, { amount: "1.00" }],
      [`/v1/wallets/${wallet}/payments`, { amount: "1.00" }],
      [`/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK }],
      [`/v1/withdrawals/${w.body.id}/complete`, undefined],
      ["/v1/transfers", { fromWalletId: wallet, toWalletId: other, amount: "1.00" }],
      [`/v1/wallets/${wallet}/freeze`, undefined],
    ];
    for (const [path, body] of attempts) {
      const res = await t.api("POST", path, body, { key: null });
      expect({ path, status: res.status, code: res.body.code }).toEqual({ path, status: 400, code: "IDEMPOTENCY_KEY_REQUIRED" });
    }
    const empty = await t.api("POST", `/v1/wallets/${wallet}/payments`, { amount: "1.00" }, { key: "" });
    expect({ status: empty.status, code: empty.body.code }).toEqual({ status: 400, code: "IDEMPOTENCY_KEY_REQUIRED" });

    expect(await t.node.saga.idle(5_000)).toBe(true);
    expect({ rows: await footprint(), wallet: await walletRow(wallet), other: await walletRow(other) }).toEqual(before);
  });
});

describe("wallet creation", () => {
  test("the same key 5 times at once creates one wallet and answers its id 5 times", async () => {
    const k = key();
    const before = await footprint();
    const answers = await fiveAtOnce(() => t.api("POST", "/v1/wallets", { ownerId: "alice", asset: "KES" }, { key: k }));
    expect(answers[0]!.status).toBe(201);
    expectAllIdentical(answers);
    const id = answers[0]!.body.id;
    expect(await walletRow(id)).toMatchObject({ id, ownerId: "alice", asset: "KES", status: "active" });
    expect((await footprint()).wallets).toBe(before.wallets + 1);
  });

  test("the same key with a different body is a 422 and the first wallet is untouched", async () => {
    const k = key();
    const first = await t.api("POST", "/v1/wallets", { ownerId: "bob", asset: "USD" }, { key: k });
    expect(first.status).toBe(201);
    const before = await footprint();
    for (const body of [{ ownerId: "bob", asset: "EUR" }, { ownerId: "mallory", asset: "USD" }]) {
      const conflict = await t.api("POST", "/v1/wallets", body, { key: k });
      expect({ status: conflict.status, code: conflict.body.code }).toEqual({ status: 422, code: "IDEMPOTENCY_CONFLICT" });
    }
    expect(await walletRow(first.body.id)).toMatchObject({ ownerId: "bob", asset: "USD" });
    expect((await footprint()).wallets).toBe(before.wallets);
  });
});

describe("transfers", () => {
  test("the same key twice creates one transfer and debits once", async () => {
    const from = await fundedWallet(t.api, "USD", "10.00");
    const to = await fundedWallet(t.api, "USD");
    const k = key();
    const order = { fromWalletId: from, toWalletId: to, amount: "2.50" };
    const first = await t.api("POST", "/v1/transfers", order, { key: k });
    const second = await t.api("POST", "/v1/transfers", order, { key: k });
    expect(first.status).toBe(201);
    expect({ status: second.status, body: second.body }).toEqual({ status: first.status, body: first.body });

    expect(await t.node.saga.idle(10_000)).toBe(true);
    expect((await t.api("GET", `/v1/transfers/${first.body.id}`)).body.status).toBe("settled");
    expect((await walletRow(from)).balance.posted).toBe("7.50");
    expect((await walletRow(to)).balance.posted).toBe("2.50");
    expect(await kindsOf(from)).toEqual(["transfer_reserve", "credit"]);
  });
});

describe("withdrawal steps", () => {
  async function requested(amount: string) {
    const wallet = await fundedWallet(t.api, "USD", "10.00");
    const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination: BANK });
    expect(res.status).toBe(201);
    return { wallet, withdrawal: res.body.id as string };
  }

  test("complete sent 5 times at once with the same key completes once, with 5 identical answers", async () => {
    const { wallet, withdrawal } = await requested("4.00");
    const k = key();
    const answers = await fiveAtOnce(() => t.api("POST", `/v1/withdrawals/${withdrawal}/complete`, undefined, { key: k }));
    expect(answers[0]!.status).toBe(200);
    expect(answers[0]!.body.status).toBe("completed");
    expectAllIdentical(answers);
    expect((await walletRow(wallet)).balance).toEqual({ posted: "6.00", held: "0.00", available: "6.00" });
    expect(await kindsOf(wallet)).toEqual(["withdrawal", "credit"]);
  });

  test("complete sent 5 times at once with different keys: one 200, four 409 INVALID_TRANSITION, debited once", async () => {
    const { wallet, withdrawal } = await requested("4.00");
    const answers = await fiveAtOnce(() => t.api("POST", `/v1/withdrawals/${withdrawal}/complete`));
    const done = answers.filter((a) => a.status === 200);
    expect(done.length).toBe(1);
    expect(done[0]!.body.status).toBe("completed");
    for (const a of answers.filter((x) => x.status !== 200)) {
      expect({ status: a.status, code: a.body.code }).toEqual({ status: 409, code: "INVALID_TRANSITION" });
    }
    expect((await walletRow(wallet)).balance).toEqual({ posted: "6.00", held: "0.00", available: "6.00" });
    expect(await kindsOf(wallet)).toEqual(["withdrawal", "credit"]);
    expect((await t.api("GET", `/v1/withdrawals/${withdrawal}`)).body.status).toBe("completed");
  });
});

test("after all of the above the verifier finds the books clean", async () => {
  await verifyIsClean(t);
});
