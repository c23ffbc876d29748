import { afterAll, beforeAll, expect, test } from "bun:test";
import type { As } from "../support/auth";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { expectProblem, footprint } from "./support";

/**
 * A transfer names a target wallet the caller may not be able to see. Wallet ids can be computed
 * (they derive from the caller and the key), so if a wallet in another asset answered differently
 * from a missing one, anyone could probe which wallets exist and what they hold. To a caller who
 * may not read the target it answers exactly as a missing one; paying another user's wallet in
 * the same asset still works.
 */
let t: TestNode;
const ALICE: As = { sub: "oracle-alice", role: "user" };
const BOB: As = { sub: "oracle-bob", role: "user" };
let aliceUsd: string;
let aliceEur: string;
let bobUsd: string;
let bobEur: string;

beforeAll(async () => {
  t = await startTestNode("transfer-oracle");
  aliceUsd = await fundedWallet(t.api, "USD", "10.00", ALICE.sub);
  aliceEur = await fundedWallet(t.api, "EUR", undefined, ALICE.sub);
  bobUsd = await fundedWallet(t.api, "USD", undefined, BOB.sub);
  bobEur = await fundedWallet(t.api, "EUR", undefined, BOB.sub);
});
afterAll(() => t.stop());

const transfer = (toWalletId: string, as?: As, fromWalletId = aliceUsd): Promise<ApiResponse> =>
  t.api("POST", "/v1/transfers", { fromWalletId, toWalletId, amount: "1.00" }, as ? { as } : {});

/** The answer to a request that must write nothing at all (a refusal at the edge). */
async function answerWritingNothing(send: () => Promise<ApiResponse>): Promise<ApiResponse> {
  const before = await footprint(t.node.db);
  const res = await send();
  expect(await footprint(t.node.db)).toEqual(before);
  return res;
}

test("a user's transfer to another user's wallet in another asset answers exactly as one to a wallet that does not exist", async () => {
  const hidden = await answerWritingNothing(() => transfer(bobEur, ALICE));
  const missing = await answerWritingNothing(() => transfer(crypto.randomUUID(), ALICE));
  expectProblem(hidden, 404, "WALLET_NOT_FOUND");
  expect({ status: hidden.status, body: hidden.body }).toEqual({ status: missing.status, body: missing.body });
  expect(JSON.stringify(hidden.body)).not.toContain("EUR");
});

test("a service that may transfer but not read wallets learns nothing either", async () => {
  const svc: As = { sub: "oracle-svc", role: "service", perms: ["transfers:write"] };
  const hidden = await answerWritingNothing(() => transfer(bobEur, svc));
  const missing = await answerWritingNothing(() => transfer(crypto.randomUUID(), svc));
  expectProblem(hidden, 404, "WALLET_NOT_FOUND");
  expect({ status: hidden.status, body: hidden.body }).toEqual({ status: missing.status, body: missing.body });
});

test("whoever may read the target is told the assets differ: the owner of both, a platform admin, a service with wallets:read", async () => {
  expectProblem(await answerWritingNothing(() => transfer(aliceEur, ALICE)), 422, "ASSET_MISMATCH");
  expectProblem(await answerWritingNothing(() => transfer(bobEur)), 422, "ASSET_MISMATCH");
  const reader: As = { sub: "oracle-reader", role: "service", perms: ["transfers:write", "wallets:read"] };
  expectProblem(await answerWritingNothing(() => transfer(bobEur, reader)), 422, "ASSET_MISMATCH");
});

test("paying another user's wallet in the same asset still works, and settles", async () => {
  const created = await transfer(bobUsd, ALICE);
  expect({ status: created.status, body: created.body }).toMatchObject({ status: 201, body: { status: "pending", fromWalletId: aliceUsd, toWalletId: bobUsd } });
  expect(await t.node.saga.idle(10_000)).toBe(true);
  expect((await t.api("GET", `/v1/transfers/${created.body.id}`, undefined, { as: ALICE })).body.status).toBe("settled");
  expect((await t.api("GET", `/v1/wallets/${bobUsd}`, undefined, { as: BOB })).body.balance.posted).toBe("1.00");
  expect((await t.api("GET", `/v1/wallets/${aliceUsd}`, undefined, { as: ALICE })).body.balance.posted).toBe("9.00");
});
