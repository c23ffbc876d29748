import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { people, user } from "../support/auth";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { codes, gql } from "./support";

/**
 * The tiers and switches that need a node of their own: rate limits on (as test/security's
 * rate-limit suite sets them), and introspection on (a development node's default).
 */
let limited: TestNode;
let open: TestNode;
beforeAll(async () => {
  [limited, open] = await Promise.all([
    startTestNode("graphql-limits", { RATE_LIMITS: "on", RATE_MONEY_PER_MINUTE: "5", RATE_IP_PER_SECOND: "1000" }),
    // In development introspection is on by default (GRAPHQL_INTROSPECTION unset).
    startTestNode("graphql-introspection", { NODE_ENV: "development" }),
  ]);
});
afterAll(async () => {
  await Promise.all([limited?.stop(), open?.stop()]);
});

const PAY = `mutation($id: ID!, $key: String) { pay(walletId: $id, amount: "1.00", idempotencyKey: $key) { id } }`;

describe("mutations count against the money tier, as REST's do", () => {
  test("50 payments in a burst: 5 pass, the rest 429 RATE_LIMITED with Retry-After, and nothing else is paid", async () => {
    const { payer } = people("payer");
    const id = await fundedWallet(limited.api, "USD", "100.00", payer);
    const answers = await Promise.all(Array.from({ length: 50 }, () => gql(limited.baseUrl, PAY, { id, key: crypto.randomUUID() }, { as: user(payer) })));
    const paid = answers.filter((a) => a.body.data?.pay);
    expect(paid).toHaveLength(5);
    const refused = answers.filter((a) => !a.body.data?.pay);
    expect(refused).toHaveLength(45);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(codes(r)).toEqual(["RATE_LIMITED"]);
      expect(r.body.errors[0].extensions.retryAfter).toBeGreaterThan(0);
    }
    // REST shares the tier: the same caller is refused there too.
    const rest = await limited.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }, { as: user(payer) });
    expect(rest.status).toBe(429);
    const wallet = await limited.api("GET", `/v1/wallets/${id}`);
    expect(wallet.body.balance.available).toBe("95.00");
    // Aliases do not get around it: 10 payments in one request are 10 hits on the tier.
    const { other } = people("other");
    const second = await fundedWallet(limited.api, "USD", "100.00", other);
    const many = Array.from({ length: 10 }, (_, i) => `p${i}: pay(walletId: "${second}", amount: "1.00", idempotencyKey: "${crypto.randomUUID()}") { id }`).join(" ");
    const batch = await gql(limited.baseUrl, `mutation { ${many} }`, undefined, { as: user(other) });
    expect(Object.values(batch.body.data).filter(Boolean)).toHaveLength(5);
    expect(codes(batch).filter((c) => c === "RATE_LIMITED")).toHaveLength(5);
  });
});

describe("in development (NODE_ENV=development, GRAPHQL_INTROSPECTION unset), or with GRAPHQL_INTROSPECTION=on", () => {
  test("introspection and field suggestions are answered", async () => {
    const schema = await gql(open.baseUrl, `{ __schema { queryType { name } mutationType { name } } }`);
    expect(schema.status).toBe(200);
    expect(schema.body.data.__schema).toEqual({ queryType: { name: "Query" }, mutationType: { name: "Mutation" } });
    const typo = await gql(open.baseUrl, `{ walet(walletId: "x") { id } }`);
    expect(typo.status).toBe(400);
    expect(typo.body.errors[0].message).toContain('Did you mean "wallet"');
  });
});
