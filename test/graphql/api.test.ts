import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { people, user } from "../support/auth";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { codes, gql } from "./support";

/**
 * GraphQL over a real node (default limits): the abuse checklist of seed 003 and the guarantees
 * REST gives, since every field runs the operation through `execute` as REST does.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("graphql-api");
});
afterAll(() => t.stop());

const PAY = `mutation($id: ID!, $amount: Decimal!, $key: String) { pay(walletId: $id, amount: $amount, idempotencyKey: $key) { id amount balance { available } } }`;

async function paymentsOf(walletId: string): Promise<number> {
  const res = await t.api("GET", `/v1/wallets/${walletId}/transactions?limit=200`);
  return res.body.items.filter((i: { kind: string }) => i.kind === "payment").length;
}

describe("the document's limits", () => {
  async function chamaOf(admin: string): Promise<string> {
    const created = await gql(t.baseUrl, `mutation { createChama(name: "club", asset: USD, idempotencyKey: "${crypto.randomUUID()}") { id } }`, undefined, { as: user(admin) });
    expect(created.body.errors).toBeUndefined();
    return created.body.data.createChama.id;
  }

  test("depth 7 is answered, depth 8 refused with 400 before anything runs", async () => {
    const { a } = people("a");
    const id = await chamaOf(a);
    // chama → withdrawals → edges → node → chama → balance → available: 7 levels (nested reads, generated).
    const seven = `query($id: ID!) { chama(id: $id) { withdrawals(first: 2) { edges { node { chama { balance { available } } } } } } }`;
    const ok = await gql(t.baseUrl, seven, { id }, { as: user(a) });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ data: { chama: { withdrawals: { edges: [] } } } });
    const eight = `query($id: ID!) { chama(id: $id) { withdrawals(first: 2) { edges { node { chama { withdrawals(first: 2) { pageInfo { hasNextPage } } } } } } } }`;
    const refused = await gql(t.baseUrl, eight, { id }, { as: user(a) });
    expect(refused.status).toBe(400);
    expect(codes(refused)).toEqual(["VALIDATION_FAILED"]);
    expect(refused.body.errors[0].message).toContain("depth limit of 7");
    expect(refused.body.data).toBeUndefined();
  });

  test("a query costing about 2000 is refused; lists cost their limit, connections their first", async () => {
    const fields = "id ownerId asset status version balance { posted held available }";
    // The generated field, REST's shape: 1 + 200 × (items 1 + 9 fields).
    const costly = await gql(t.baseUrl, `{ walletsList(limit: 200) { items { ${fields} } } }`);
    expect(costly.status).toBe(400);
    expect(costly.body.errors[0].message).toMatch(/query cost 2001 exceeds the maximum cost of 1000/);
    // The connection: 1 + 200 × (edges 1 + node 1 + 9 fields).
    const connection = await gql(t.baseUrl, `{ wallets(first: 200) { edges { node { ${fields} } } } }`);
    expect(connection.status).toBe(400);
    expect(connection.body.errors[0].message).toMatch(/query cost 2201 exceeds the maximum cost of 1000/);
    const cheap = await gql(t.baseUrl, `{ wallets(first: 20) { edges { node { ${fields} } } pageInfo { hasNextPage endCursor } } }`);
    expect(cheap.status).toBe(200);
    expect(cheap.body.errors).toBeUndefined();
    // A variable counts as the largest page it could be.
    const variable = await gql(t.baseUrl, `query($n: Int) { wallets(first: $n) { edges { node { ${fields} } } } }`, { n: 1 });
    expect(variable.status).toBe(400);
    const restVariable = await gql(t.baseUrl, `query($n: Int) { walletsList(limit: $n) { items { ${fields} } } }`, { n: 1 });
    expect(restVariable.status).toBe(400);
  });

  test("a batch of 100 operations is refused, a batch of 3 answered", async () => {
    const batch = (n: number) => JSON.stringify(Array.from({ length: n }, () => ({ query: "{ wallets(first: 1) { pageInfo { hasNextPage } } }" })));
    const refused = await gql(t.baseUrl, "", undefined, { raw: batch(100) });
    expect([400, 413]).toContain(refused.status);
    expect(JSON.stringify(refused.body)).toContain("Batching is limited to 3");
    const ok = await gql(t.baseUrl, "", undefined, { raw: batch(3) });
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(3);
    for (const r of ok.body) expect(r.errors).toBeUndefined();
  });

  test("100 aliases of pay are refused and nothing is paid", async () => {
    const id = await fundedWallet(t.api, "USD", "100.00");
    const aliases = Array.from({ length: 100 }, (_, i) => `p${i}: pay(walletId: "${id}", amount: "1.00", idempotencyKey: "alias-${i}-${id}") { id }`).join(" ");
    const refused = await gql(t.baseUrl, `mutation { ${aliases} }`);
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0].message).toMatch(/Aliases limit of 15 exceeded/);
    expect(await paymentsOf(id)).toBe(0);
  });

  test("introspection and field suggestions are refused (GRAPHQL_INTROSPECTION is off by default)", async () => {
    const schema = await gql(t.baseUrl, `{ __schema { queryType { name } } }`);
    expect(schema.status).toBe(400);
    expect(schema.body.errors[0].message).toContain("introspection has been disabled");
    const type = await gql(t.baseUrl, `{ __type(name: "Query") { name } }`);
    expect(type.status).toBe(400);
    const typo = await gql(t.baseUrl, `{ walet(walletId: "x") { id } }`);
    expect(typo.status).toBe(400);
    expect(JSON.stringify(typo.body)).not.toMatch(/Did you mean|"wallet"/);
    const badEnum = await gql(t.baseUrl, `mutation { createWallet(ownerId: "x", asset: USX, idempotencyKey: "e1") { id } }`);
    expect(badEnum.status).toBe(400);
    expect(JSON.stringify(badEnum.body)).not.toContain("Did you mean");
  });

  test("a malformed document is 400 and a huge one 413, quickly, never 500", async () => {
    const malformed = await gql(t.baseUrl, "{ wallet(id: ");
    expect(malformed.status).toBe(400);
    expect(codes(malformed)).toEqual(["VALIDATION_FAILED"]);
    const notJson = await gql(t.baseUrl, "", undefined, { raw: "{nope" });
    expect(notJson.status).toBe(400);
    const huge = await gql(t.baseUrl, "", undefined, { raw: JSON.stringify({ query: `{ ${"wallets { pageInfo { hasNextPage } } ".repeat(30_000)} }` }) });
    expect(huge.status).toBe(413);
    expect(huge.ms).toBeLessThan(1000);
    // Over GRAPHQL_MAX_BYTES (20 KB), under the app's 64 KB body limit: refused before parsing.
    const large = await gql(t.baseUrl, "", undefined, { raw: JSON.stringify({ query: `{ ${"a ".repeat(15_000)} }` }) });
    expect(large.status).toBe(413);
    expect(large.body.code).toBe("PAYLOAD_TOO_LARGE");
    // Under the size, far over the token limit: the parser stops at 2000 tokens.
    const tokens = await gql(t.baseUrl, "", undefined, { raw: JSON.stringify({ query: `{ ${"a ".repeat(9_000)} }` }) });
    expect(tokens.status).toBe(400);
    expect(tokens.body.errors[0].message).toContain("Token limit of 2000");
    expect(tokens.ms).toBeLessThan(1000);
    console.log(`refused: 1 MB document in ${huge.ms.toFixed(1)} ms, 9000-token document in ${tokens.ms.toFixed(1)} ms`);
  });

  test("GET takes queries only", async () => {
    const id = await fundedWallet(t.api, "USD", "3.00");
    // The README's example: wallets with their postings, nested.
    const read = await gql(
      t.baseUrl,
      `{ wallets(first: 10) { edges { node { id asset balance { available } transactions(first: 5) { edges { node { kind amount } } } } } pageInfo { hasNextPage endCursor } } }`,
      undefined,
      { method: "GET" },
    );
    expect(read.status).toBe(200);
    expect(read.body.errors).toBeUndefined();
    const mine = read.body.data.wallets.edges.find((e: { node: { id: string } }) => e.node.id === id).node;
    expect(mine).toEqual({ id, asset: "USD", balance: { available: "3.00" }, transactions: { edges: [{ node: { kind: "credit", amount: "3.00" } }] } });
    const change = await gql(t.baseUrl, `mutation { createWallet(ownerId: "g", asset: USD, idempotencyKey: "g1") { id } }`, undefined, { method: "GET" });
    expect(change.status).toBe(405);
  });
});

describe("the same rules as REST", () => {
  test("another user's wallet and its transactions, directly or nested, are not found, and nothing leaks", async () => {
    const { owner, stranger } = people("owner", "stranger");
    const id = await fundedWallet(t.api, "USD", "5.00", owner);
    const mine = await gql(t.baseUrl, `query($id: ID!) { wallet(id: $id) { id balance { available } } }`, { id }, { as: user(owner) });
    expect(mine.body.data.wallet).toEqual({ id, balance: { available: "5.00" } });

    for (const q of [
      `query($id: ID!) { wallet(id: $id) { id ownerId balance { available } } }`,
      `query($id: ID!) { walletsGet(walletId: $id) { id ownerId balance { available } } }`,
      `query($id: ID!) { transactions(walletId: $id) { edges { node { id amount } } } }`,
      `query($id: ID!) { walletsTransactionsList(walletId: $id) { items { id amount } } }`,
      `query($id: ID!) { wallet(id: $id) { transactions(first: 5) { edges { node { id amount } } } } }`,
    ]) {
      const res = await gql(t.baseUrl, q, { id }, { as: user(stranger) });
      expect(res.status).toBe(200);
      expect(codes(res)).toEqual(["WALLET_NOT_FOUND"]);
      expect(Object.values(res.body.data)).toEqual([null]);
      expect(JSON.stringify(res.body)).not.toMatch(/5\.00|owner-/);
      expect(JSON.stringify(res.body)).not.toContain(owner);
    }
    // Paying from it: the same answer REST gives.
    const pay = await gql(t.baseUrl, PAY, { id, amount: "1.00", key: crypto.randomUUID() }, { as: user(stranger) });
    expect(codes(pay)).toEqual(["WALLET_NOT_FOUND"]);
    expect((await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }, { as: user(stranger) })).body.code).toBe("WALLET_NOT_FOUND");
  });

  test("200 payments at once on a wallet funded for 37: exactly 37 succeed, the rest INSUFFICIENT_FUNDS", async () => {
    const id = await fundedWallet(t.api, "USD", "37.00");
    const answers = await Promise.all(Array.from({ length: 200 }, () => gql(t.baseUrl, PAY, { id, amount: "1.00", key: crypto.randomUUID() })));
    const paid = answers.filter((a) => a.body.data?.pay);
    expect(paid.length).toBe(37);
    for (const a of answers.filter((x) => !x.body.data?.pay)) expect(codes(a)).toEqual(["INSUFFICIENT_FUNDS"]);
    // Money comes back as strings, never numbers.
    for (const p of paid) {
      expect(typeof p.body.data.pay.amount).toBe("string");
      expect(typeof p.body.data.pay.balance.available).toBe("string");
    }
    expect(new Set(paid.map((p) => p.body.data.pay.balance.available)).size).toBe(37);
    const wallet = await t.api("GET", `/v1/wallets/${id}`);
    expect(wallet.body.balance.available).toBe("0.00");
    expect(await paymentsOf(id)).toBe(37);
  });

  test("the same idempotency key over GraphQL and REST is one payment", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const key = crypto.randomUUID();
    const first = await gql(t.baseUrl, PAY, { id, amount: "2.50", key });
    expect(first.body.errors).toBeUndefined();
    const again = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.50" }, { key });
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(first.body.data.pay.id);
    // The header, for a request with one mutation, is the same key.
    const header = await gql(t.baseUrl, `mutation($id: ID!) { pay(walletId: $id, amount: "2.50") { id } }`, { id }, { key });
    expect(header.body.data.pay.id).toBe(first.body.data.pay.id);
    // Another amount under the same key: REST's conflict.
    const conflict = await gql(t.baseUrl, PAY, { id, amount: "3.00", key });
    expect(codes(conflict)).toEqual(["IDEMPOTENCY_CONFLICT"]);
    expect(await paymentsOf(id)).toBe(1);
    expect((await t.api("GET", `/v1/wallets/${id}`)).body.balance.available).toBe("7.50");
  });

  test("a mutation without a key is refused with REST's code; one header key is never shared by two mutations", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const none = await gql(t.baseUrl, `mutation($id: ID!) { pay(walletId: $id, amount: "1.00") { id } }`, { id });
    expect(codes(none)).toEqual(["IDEMPOTENCY_KEY_REQUIRED"]);
    expect(none.body.errors[0].extensions.status).toBe(400);
    const two = await gql(t.baseUrl, `mutation($id: ID!) { a: pay(walletId: $id, amount: "1.00") { id } b: pay(walletId: $id, amount: "1.00") { id } }`, { id }, { key: crypto.randomUUID() });
    expect(codes(two)).toEqual(["IDEMPOTENCY_KEY_REQUIRED", "IDEMPOTENCY_KEY_REQUIRED"]);
    expect(await paymentsOf(id)).toBe(0);
  });

  test("refusals carry the stable code and REST's detail; field errors stay in extensions; a Decimal is never a number", async () => {
    const id = await fundedWallet(t.api, "USD", "1.00");
    const bad = await gql(t.baseUrl, PAY, { id, amount: "1.001", key: crypto.randomUUID() });
    expect(codes(bad)).toEqual(["VALIDATION_FAILED"]);
    expect(bad.body.errors[0].extensions.errors[0].path).toBe("args.amount");
    expect(JSON.stringify(bad.body)).not.toMatch(/stack|at \//);
    const float = await gql(t.baseUrl, PAY, { id, amount: 1.5, key: crypto.randomUUID() });
    expect(float.status).toBe(400);
    expect(float.body.errors[0].message).toContain("never a number");
    const missing = await gql(t.baseUrl, `{ wallet(id: "${crypto.randomUUID()}") { id } }`);
    expect(missing.body.errors[0]).toMatchObject({ extensions: { code: "WALLET_NOT_FOUND", status: 404 } });
  });
});
