import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { verifyIsClean } from "../support/ledger";
import { type ApiResponse, fundedWallet, startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";

/**
 * Every refusal through real HTTP: the right status and code as problem+json, and nothing written.
 * MAX_AMOUNT is lowered to 1000 (major units) so "beyond the maximum" is cheap to reach.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("validation", { MAX_AMOUNT: "1000" });
});
afterAll(() => t.stop());

const bank = { type: "bank", account: "DE89 3704 0044 0532 0130 00" };
const unknownId = () => crypto.randomUUID();

/** What the world looks like: every wallet's view and transactions, and how many rows each table holds. */
async function world(walletIds: string[]) {
  const wallets = await Promise.all(walletIds.map(async (id) => [(await t.api("GET", `/v1/wallets/${id}`)).body, (await t.api("GET", `/v1/wallets/${id}/transactions`)).body]));
  const [rows] = await t.node.db`select
    (select count(*)::int from journals) as journals, (select count(*)::int from postings) as postings,
    (select count(*)::int from wallets) as wallets, (select count(*)::int from events) as outbox,
    (select json_agg(json_build_object('id', id, 'status', status) order by id) from withdrawals) as withdrawals,
    (select json_agg(json_build_object('id', id, 'status', status) order by id) from transfers) as transfers`;
  return { wallets, rows };
}

/** Run a refused request and prove it wrote nothing: views, versions, transactions, row counts, verifier. */
async function expectNothingWritten(walletIds: string[], request: () => Promise<ApiResponse>, status: number, code: string): Promise<void> {
  const before = await world(walletIds);
  expectProblem(await request(), status, code);
  // The version is compared in its own test below, so each failure here names a real write.
  expect(withoutVersions(await world(walletIds))).toEqual(withoutVersions(before));
  await verifyIsClean(t);
}

type World = Awaited<ReturnType<typeof world>>;
const withoutVersions = (w: World) => ({ ...w, wallets: w.wallets.map(([{ version: _v, ...view }, transactions]) => [view, transactions]) });

describe("amounts", () => {
  const badAmounts: [string, unknown][] = [
    ["more decimals than USD has", "1.001"],
    ["trailing zeros beyond the scale", "1.000"],
    ["negative", "-1"],
    ["negative with decimals", "-0.01"],
    ["zero", "0"],
    ["zero with decimals", "0.00"],
    ["non-numeric", "ten"],
    ["empty", ""],
    ["exponent", "1e3"],
    ["capital exponent", "1E2"],
    ["leading plus", "+1"],
    ["leading zero", "01"],
    ["leading space", " 1"],
    ["trailing dot", "1."],
    ["leading dot", ".5"],
    ["hex", "0x10"],
    ["thousands separator", "1,000"],
    ["Infinity", "Infinity"],
    ["NaN", "NaN"],
    ["a JSON number", 5],
    ["a JSON float", 0.1],
    ["null", null],
    ["an object", { value: "1" }],
    ["an array", ["1"]],
    ["one cent above the configured maximum", "1000.01"],
    ["far above the configured maximum", "99999999999999999999999999999999"],
    ["longer than 100 characters", "1".repeat(101)],
  ];

  let usd: string;
  let other: string;
  beforeAll(async () => {
    usd = await fundedWallet(t.api, "USD", "500");
    other = await fundedWallet(t.api, "USD");
  });

  for (const [name, amount] of badAmounts) {
    test(`an amount that is ${name} is a 400 on credits, payments, withdrawals and transfers, and writes nothing`, async () => {
      const ids = [usd, other];
      await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${usd}/credits`, { amount }), 400, "VALIDATION_FAILED");
      await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${usd}/payments`, { amount }), 400, "VALIDATION_FAILED");
      await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${usd}/withdrawals`, { amount, destination: bank }), 400, "VALIDATION_FAILED");
      await expectNothingWritten(ids, () => t.api("POST", "/v1/transfers", { fromWalletId: usd, toWalletId: other, amount }), 400, "VALIDATION_FAILED");
    });
  }

  test("the configured maximum itself is accepted", async () => {
    const id = await fundedWallet(t.api, "USD");
    expect((await t.api("POST", `/v1/wallets/${id}/credits`, { amount: "1000.00" })).status).toBe(201);
  });

  test("the scale follows the wallet's asset: 8 decimals pass for BTC, 9 do not; 18 pass for ETH, 19 do not", async () => {
    const btc = await fundedWallet(t.api, "BTC");
    expect((await t.api("POST", `/v1/wallets/${btc}/credits`, { amount: "0.00000001" })).status).toBe(201);
    await expectNothingWritten([btc], () => t.api("POST", `/v1/wallets/${btc}/credits`, { amount: "0.000000001" }), 400, "VALIDATION_FAILED");
    const eth = await fundedWallet(t.api, "ETH");
    const credited = await t.api("POST", `/v1/wallets/${eth}/credits`, { amount: "0.000000000000000001" });
    expect(credited.body.amount).toBe("0.000000000000000001");
    await expectNothingWritten([eth], () => t.api("POST", `/v1/wallets/${eth}/credits`, { amount: "0.0000000000000000001" }), 400, "VALIDATION_FAILED");
  });
});

describe("shapes", () => {
  test("an unknown asset is a 400 and creates no wallet", async () => {
    for (const asset of ["XRP", "usd", "", "USD ", 1]) {
      await expectNothingWritten([], () => t.api("POST", "/v1/wallets", { ownerId: "owner-1", asset }), 400, "VALIDATION_FAILED");
    }
  });

  test("unknown fields are a 400 on every body, nested ones included", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    const to = await fundedWallet(t.api, "USD");
    const cases: [string, unknown][] = [
      ["/v1/wallets", { ownerId: "owner-1", asset: "USD", balance: "100" }],
      [`/v1/wallets/${id}/credits`, { amount: "1", fee: "0" }],
      [`/v1/wallets/${id}/payments`, { amount: "1", overdraft: true }],
      [`/v1/wallets/${id}/withdrawals`, { amount: "1", destination: { ...bank, swift: "X" } }],
      [`/v1/wallets/${id}/withdrawals`, { amount: "1", destination: bank, priority: "high" }],
      [`/v1/wallets/${id}/freeze`, { force: true }],
      ["/v1/transfers", { fromWalletId: id, toWalletId: to, amount: "1", status: "settled" }],
    ];
    for (const [path, body] of cases) await expectNothingWritten([id, to], () => t.api("POST", path, body), 400, "VALIDATION_FAILED");
  });

  test("a POST without an Idempotency-Key is a 400", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    await expectNothingWritten([id], () => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1" }, { key: null }), 400, "IDEMPOTENCY_KEY_REQUIRED");
  });
});

describe("transfers", () => {
  test("a transfer to the same wallet is a 422 SAME_WALLET", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    await expectNothingWritten([id], () => t.api("POST", "/v1/transfers", { fromWalletId: id, toWalletId: id, amount: "1" }), 422, "SAME_WALLET");
  });

  test("a transfer to the same wallet spelled in upper case is refused too", async () => {
    // UUIDs are case-insensitive: the same wallet must not become a second actor and a stuck transfer.
    const id = await fundedWallet(t.api, "USD", "10");
    const before = await world([id]);
    const res = await t.api("POST", "/v1/transfers", { fromWalletId: id, toWalletId: id.toUpperCase(), amount: "1" });
    expect({ status: res.status, code: res.body?.code }).toBeOneOf([
      { status: 422, code: "SAME_WALLET" },
      { status: 400, code: "VALIDATION_FAILED" },
    ]);
    expect(withoutVersions(await world([id]))).toEqual(withoutVersions(before));
  });

  test("a transfer between wallets of different assets is a 422 ASSET_MISMATCH", async () => {
    const usd = await fundedWallet(t.api, "USD", "10");
    const eur = await fundedWallet(t.api, "EUR", "10");
    await expectNothingWritten([usd, eur], () => t.api("POST", "/v1/transfers", { fromWalletId: usd, toWalletId: eur, amount: "1" }), 422, "ASSET_MISMATCH");
  });

  test("a transfer from or to an unknown wallet is a 404", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    await expectNothingWritten([id], () => t.api("POST", "/v1/transfers", { fromWalletId: id, toWalletId: unknownId(), amount: "1" }), 404, "WALLET_NOT_FOUND");
    await expectNothingWritten([id], () => t.api("POST", "/v1/transfers", { fromWalletId: unknownId(), toWalletId: id, amount: "1" }), 404, "WALLET_NOT_FOUND");
  });

  test("a transfer above the sender's available balance is a 409 INSUFFICIENT_FUNDS", async () => {
    const from = await fundedWallet(t.api, "USD", "10");
    const to = await fundedWallet(t.api, "USD");
    await expectNothingWritten([from, to], () => t.api("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "10.01" }), 409, "INSUFFICIENT_FUNDS");
  });

  test("a transfer into a frozen or closed wallet is accepted, then voided: the money comes back", async () => {
    // Refusing it up front would make the answer depend on the receiver's status at each retry,
    // so a retried key could contradict its first answer. The receiver refuses; the saga voids.
    const from = await fundedWallet(t.api, "USD", "10");
    const frozen = await fundedWallet(t.api, "USD");
    const closed = await fundedWallet(t.api, "USD");
    expect((await t.api("POST", `/v1/wallets/${frozen}/freeze`)).status).toBe(200);
    expect((await t.api("POST", `/v1/wallets/${closed}/close`)).status).toBe(200);
    for (const [to, code] of [[frozen, "WALLET_FROZEN"], [closed, "WALLET_CLOSED"]] as const) {
      const key = crypto.randomUUID();
      const created = await t.api("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "4" }, { key });
      expect(created.status).toBe(201);
      expect(await t.node.saga.idle()).toBe(true);
      const settled = await t.api("GET", `/v1/transfers/${created.body.id}`);
      expect(settled.body).toMatchObject({ status: "voided", reason: code });
      const retried = await t.api("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "4" }, { key });
      expect({ status: retried.status, body: retried.body }).toEqual({ status: created.status, body: created.body });
    }
    expect((await t.api("GET", `/v1/wallets/${from}`)).body.balance).toEqual({ posted: "10.00", held: "0.00", available: "10.00" });
    expect((await t.api("GET", `/v1/wallets/${frozen}`)).body.balance.posted).toBe("0.00");
    expect((await t.api("GET", "/admin/verify")).body.ok).toBe(true);
  });
});

describe("unknown resources", () => {
  test("every route on an unknown wallet, withdrawal or transfer is a 404", async () => {
    const id = unknownId();
    const cases: [string, string, unknown, string][] = [
      ["GET", `/v1/wallets/${id}`, undefined, "WALLET_NOT_FOUND"],
      ["GET", `/v1/wallets/${id}/transactions`, undefined, "WALLET_NOT_FOUND"],
      ["POST", `/v1/wallets/${id}/credits`, { amount: "1" }, "WALLET_NOT_FOUND"],
      ["POST", `/v1/wallets/${id}/payments`, { amount: "1" }, "WALLET_NOT_FOUND"],
      ["POST", `/v1/wallets/${id}/withdrawals`, { amount: "1", destination: bank }, "WALLET_NOT_FOUND"],
      ["POST", `/v1/wallets/${id}/freeze`, undefined, "WALLET_NOT_FOUND"],
      ["POST", `/v1/wallets/${id}/close`, undefined, "WALLET_NOT_FOUND"],
      ["GET", `/v1/withdrawals/${id}`, undefined, "WITHDRAWAL_NOT_FOUND"],
      ["POST", `/v1/withdrawals/${id}/complete`, undefined, "WITHDRAWAL_NOT_FOUND"],
      ["GET", `/v1/transfers/${id}`, undefined, "TRANSFER_NOT_FOUND"],
    ];
    for (const [method, path, body, code] of cases) await expectNothingWritten([], () => t.api(method, path, body), 404, code);
  });
});

describe("wallet status", () => {
  test("credits, payments, withdrawals and outgoing transfers on a frozen wallet are a 409 WALLET_FROZEN", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    const to = await fundedWallet(t.api, "USD");
    expect((await t.api("POST", `/v1/wallets/${id}/freeze`)).body.status).toBe("frozen");
    const ids = [id, to];
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/credits`, { amount: "1" }), 409, "WALLET_FROZEN");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1" }), 409, "WALLET_FROZEN");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "1", destination: bank }), 409, "WALLET_FROZEN");
    await expectNothingWritten(ids, () => t.api("POST", "/v1/transfers", { fromWalletId: id, toWalletId: to, amount: "1" }), 409, "WALLET_FROZEN");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/freeze`), 409, "INVALID_TRANSITION");
  });

  test("unfreezing an active wallet is a 409 INVALID_TRANSITION", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    await expectNothingWritten([id], () => t.api("POST", `/v1/wallets/${id}/unfreeze`), 409, "INVALID_TRANSITION");
  });

  test("closing a wallet that holds money is a 409 WALLET_NOT_EMPTY", async () => {
    const id = await fundedWallet(t.api, "USD", "0.01");
    await expectNothingWritten([id], () => t.api("POST", `/v1/wallets/${id}/close`), 409, "WALLET_NOT_EMPTY");
  });

  test("everything on a closed wallet is a 409 WALLET_CLOSED, and closing again INVALID_TRANSITION", async () => {
    const id = await fundedWallet(t.api, "USD");
    const from = await fundedWallet(t.api, "USD", "10");
    expect((await t.api("POST", `/v1/wallets/${id}/close`)).body.status).toBe("closed");
    const ids = [id, from];
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/credits`, { amount: "1" }), 409, "WALLET_CLOSED");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1" }), 409, "WALLET_CLOSED");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "1", destination: bank }), 409, "WALLET_CLOSED");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/freeze`), 409, "WALLET_CLOSED");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/unfreeze`), 409, "WALLET_CLOSED");
    await expectNothingWritten(ids, () => t.api("POST", "/v1/transfers", { fromWalletId: id, toWalletId: from, amount: "1" }), 409, "WALLET_CLOSED");
    await expectNothingWritten(ids, () => t.api("POST", `/v1/wallets/${id}/close`), 409, "INVALID_TRANSITION");
  });

  test("a payment above the available balance is a 409 INSUFFICIENT_FUNDS", async () => {
    const id = await fundedWallet(t.api, "USD", "10");
    expect((await t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "6", destination: bank })).status).toBe(201);
    await expectNothingWritten([id], () => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "4.01" }), 409, "INSUFFICIENT_FUNDS");
  });
});

describe("withdrawal transitions", () => {
  async function withdrawal(...steps: string[]): Promise<{ walletId: string; id: string }> {
    const walletId = await fundedWallet(t.api, "USD", "10");
    const created = await t.api("POST", `/v1/wallets/${walletId}/withdrawals`, { amount: "3", destination: bank });
    expect(created.body.status).toBe("requested");
    for (const s of steps) expect((await t.api("POST", `/v1/withdrawals/${created.body.id}/${s}`)).status).toBe(200);
    return { walletId, id: created.body.id };
  }

  const illegal: [string, string[], string][] = [
    ["complete after cancel", ["cancel"], "complete"],
    ["process after cancel", ["cancel"], "process"],
    ["cancel while processing", ["process"], "cancel"],
    ["process twice", ["process"], "process"],
    ["fail after completed", ["complete"], "fail"],
    ["complete twice", ["process", "complete"], "complete"],
    ["cancel after failed", ["fail"], "cancel"],
  ];
  for (const [name, before, step] of illegal) {
    test(`${name} is a 409 INVALID_TRANSITION that changes neither the withdrawal nor the wallet`, async () => {
      const w = await withdrawal(...before);
      const statusBefore = (await t.api("GET", `/v1/withdrawals/${w.id}`)).body;
      await expectNothingWritten([w.walletId], () => t.api("POST", `/v1/withdrawals/${w.id}/${step}`), 409, "INVALID_TRANSITION");
      expect((await t.api("GET", `/v1/withdrawals/${w.id}`)).body).toEqual(statusBefore);
    });
  }

  test("a withdrawal above the available balance is a 409 INSUFFICIENT_FUNDS", async () => {
    const w = await withdrawal();
    await expectNothingWritten([w.walletId], () => t.api("POST", `/v1/wallets/${w.walletId}/withdrawals`, { amount: "7.01", destination: bank }), 409, "INSUFFICIENT_FUNDS");
  });
});

test("a refused command leaves the wallet's version where it was", async () => {
  const id = await fundedWallet(t.api, "USD", "10");
  const withdrawal = (await t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "1", destination: bank })).body.id;
  expect((await t.api("POST", `/v1/withdrawals/${withdrawal}/process`)).status).toBe(200);
  const version = async () => (await t.api("GET", `/v1/wallets/${id}`)).body.version as number;
  const before = await version();
  const refused: [string, string, unknown, string][] = [
    ["POST", `/v1/wallets/${id}/payments`, { amount: "9.01" }, "INSUFFICIENT_FUNDS"],
    ["POST", `/v1/wallets/${id}/unfreeze`, undefined, "INVALID_TRANSITION"],
    ["POST", `/v1/wallets/${id}/close`, undefined, "WALLET_NOT_EMPTY"],
    ["POST", `/v1/withdrawals/${withdrawal}/cancel`, undefined, "INVALID_TRANSITION"],
  ];
  for (const [method, path, body, code] of refused) {
    expect((await t.api(method, path, body)).body.code).toBe(code);
    expect({ path, version: await version() }).toEqual({ path, version: before });
  }
});
