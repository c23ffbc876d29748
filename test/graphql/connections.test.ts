import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { people, user, type As } from "../support/auth";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { BANK_ACCOUNT, newChama } from "../chama/support";
import { codes, gql } from "./support";

/**
 * The friendly reads over a real node: lists as Relay connections (`first`/`after` are the
 * operation's `limit`/`cursor`), single objects by `id`, a chama with its members and withdrawals,
 * and nested reads that answer exactly what REST answers the same caller.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("graphql-connections");
});
afterAll(() => t.stop());

interface Page {
  edges: { node: any; cursor: string | null }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

/** Follows a connection with `first`/`after` to its end (bounded): every page, as answered. */
async function pagesOf(query: string, pick: (data: any) => Page, variables: Record<string, unknown>, as?: As): Promise<Page[]> {
  const pages: Page[] = [];
  let after: string | null = null;
  for (let i = 0; i < 50; i++) {
    const res = await gql(t.baseUrl, query, { ...variables, after }, as ? { as } : {});
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    const page = pick(res.body.data);
    pages.push(page);
    // REST's cursor is per page: the last edge carries it, every other edge's is null.
    page.edges.forEach((e, j) => expect(e.cursor).toBe(j === page.edges.length - 1 ? page.pageInfo.endCursor : null));
    expect(page.pageInfo.hasPreviousPage).toBe(false);
    expect(page.pageInfo.hasNextPage).toBe(page.pageInfo.endCursor !== null);
    if (!page.pageInfo.hasNextPage) return pages;
    after = page.pageInfo.endCursor;
  }
  throw new Error("more than 50 pages");
}

const PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";

describe("lists are connections", () => {
  test("wallets(ownerId, first, after): every wallet once across pages of 2, in REST's order; hasNextPage false at the end", async () => {
    const { owner } = people("owner");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await fundedWallet(t.api, "USD", undefined, owner));
    // (A literal `first`: a variable would cost as the largest page, 200.)
    const q = `query($after: String) { wallets(first: 2, after: $after) { edges { node { id ownerId } cursor } ${PAGE_INFO} } }`;
    const pages = await pagesOf(q, (d) => d.wallets, {}, user(owner));
    expect(pages.map((p) => p.edges.length)).toEqual([2, 2, 1]);
    const seen = pages.flatMap((p) => p.edges.map((e) => e.node.id));
    expect(new Set(seen).size).toBe(seen.length); // nothing repeated
    expect([...seen].sort()).toEqual([...ids].sort()); // nothing skipped
    expect(pages.flatMap((p) => p.edges.map((e) => e.node.ownerId))).toEqual(Array(5).fill(owner));
    const rest = await t.api("GET", `/v1/wallets?limit=200`, undefined, { as: user(owner) });
    expect(seen).toEqual(rest.body.items.map((w: { id: string }) => w.id));
    expect(pages.at(-1)!.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null });
    // The platform names whose wallets (ownerId), as REST's does.
    const named = await pagesOf(`query($owner: String, $after: String) { wallets(ownerId: $owner, first: 3, after: $after) { edges { node { id } cursor } ${PAGE_INFO} } }`, (d) => d.wallets, { owner });
    expect(named.flatMap((p) => p.edges.map((e) => e.node.id))).toEqual(seen);
  });

  test("transactions(walletId, first, after) and wallet { transactions(first, after) } page the same postings", async () => {
    const { owner } = people("owner");
    const id = await fundedWallet(t.api, "USD", "1.00", owner);
    for (const amount of ["2.00", "3.00", "4.00", "5.00"]) expect((await t.api("POST", `/v1/wallets/${id}/credits`, { amount })).status).toBe(201);
    const rest = (await t.api("GET", `/v1/wallets/${id}/transactions?limit=200`)).body.items.map((i: { id: string }) => i.id);
    expect(rest).toHaveLength(5);

    const root = await pagesOf(
      `query($id: ID!, $after: String) { transactions(walletId: $id, first: 2, after: $after) { edges { node { id amount } cursor } ${PAGE_INFO} } }`,
      (d) => d.transactions,
      { id },
      user(owner),
    );
    const nested = await pagesOf(
      `query($id: ID!, $after: String) { wallet(id: $id) { transactions(first: 2, after: $after) { edges { node { id amount } cursor } ${PAGE_INFO} } } }`,
      (d) => d.wallet.transactions,
      { id },
      user(owner),
    );
    for (const pages of [root, nested]) {
      expect(pages.map((p) => p.edges.length)).toEqual([2, 2, 1]);
      expect(pages.flatMap((p) => p.edges.map((e) => e.node.id))).toEqual(rest);
      expect(pages.flatMap((p) => p.edges.map((e) => e.node.amount))).toEqual(["5.00", "4.00", "3.00", "2.00", "1.00"]);
      expect(pages.at(-1)!.pageInfo.hasNextPage).toBe(false);
    }
    // A page exactly at the end: the last page is full, and still says there is nothing after it.
    const all = await gql(t.baseUrl, `query($id: ID!) { transactions(walletId: $id, first: 5) { edges { cursor } ${PAGE_INFO} } }`, { id }, { as: user(owner) });
    expect(all.body.data.transactions.pageInfo.hasNextPage).toBe(false);
    expect(all.body.data.transactions.edges.map((e: { cursor: unknown }) => e.cursor)).toEqual([null, null, null, null, null]);
    // The generated field keeps REST's shape (limit, cursor → items, nextCursor).
    const generated = await gql(t.baseUrl, `query($id: ID!) { walletsTransactionsList(walletId: $id, limit: 2) { items { id } nextCursor } }`, { id });
    expect(generated.body.data.walletsTransactionsList.items.map((i: { id: string }) => i.id)).toEqual(rest.slice(0, 2));
    expect(generated.body.data.walletsTransactionsList.nextCursor).toBe(root[0]!.pageInfo.endCursor);
  });

  test("first is counted by the cost rule (first: 500 refused before anything runs); a bad first or after is 400-coded, named as given", async () => {
    const id = await fundedWallet(t.api, "USD", "1.00");
    // 1 + 500 × (edges 1 + cursor 1): 1001.
    const big = await gql(t.baseUrl, `{ wallets(first: 500) { edges { cursor } } }`);
    expect(big.status).toBe(400);
    expect(codes(big)).toEqual(["VALIDATION_FAILED"]);
    expect(big.body.errors[0].message).toMatch(/query cost 1001 exceeds the maximum cost of 1000/);
    const nested = await gql(t.baseUrl, `query($id: ID!) { wallet(id: $id) { transactions(first: 500) { pageInfo { hasNextPage } } } }`, { id });
    expect(nested.status).toBe(400);
    expect(nested.body.errors[0].message).toMatch(/query cost/);
    // Within the cost, past the operation's limit of 200: the operation's schema refuses it.
    for (const [args, path] of [
      ["first: 499", "args.first"],
      ["first: 0", "args.first"],
      ["first: -3", "args.first"],
      [`after: "not-a-cursor"`, "args.after"],
    ] as const) {
      const res = await gql(t.baseUrl, `query($id: ID!) { transactions(walletId: $id, ${args}) { edges { cursor } } }`, { id });
      expect(res.status, args).toBe(200);
      expect(codes(res), args).toEqual(["VALIDATION_FAILED"]);
      expect(res.body.errors[0].extensions.status).toBe(400);
      expect(res.body.errors[0].extensions.errors[0].path, args).toBe(path);
      expect(res.body.data).toEqual({ transactions: null });
    }
    for (const args of [`first: "ten"`, "first: 99999999999", "after: 12", "first: 1.5"]) {
      const wrongType = await gql(t.baseUrl, `{ wallets(${args}) { edges { cursor } } }`);
      expect(wrongType.status, args).toBe(400);
      expect(codes(wrongType).length, args).toBeGreaterThan(0);
      for (const code of codes(wrongType)) expect(code, args).toBe("VALIDATION_FAILED");
    }
    // `first: null` is as absent (the default page).
    const nullFirst = await gql(t.baseUrl, `query($id: ID!) { transactions(walletId: $id, first: null, after: null) { edges { node { amount } } } }`, { id });
    expect(nullFirst.body).toEqual({ data: { transactions: { edges: [{ node: { amount: "1.00" } }] } } });
  });

  test("chamas(first, after) pages a member's chamas", async () => {
    const { a } = people("a");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.api("POST", "/v1/chamas", { name: `club ${i}`, asset: "USD" }, { as: user(a) })).body.id);
    const pages = await pagesOf(`query($after: String) { chamas(first: 2, after: $after) { edges { node { id name } cursor } ${PAGE_INFO} } }`, (d) => d.chamas, {}, user(a));
    expect(pages.map((p) => p.edges.length)).toEqual([2, 1]);
    expect(pages.flatMap((p) => p.edges.map((e) => e.node.id)).sort()).toEqual([...ids].sort());
  });
});

describe("single objects by id", () => {
  test("wallet(id:) reads one's own; another user's is WALLET_NOT_FOUND, as REST; a bad id is VALIDATION_FAILED at args.id", async () => {
    const { owner, stranger } = people("owner", "stranger");
    const id = await fundedWallet(t.api, "USD", "7.00", owner);
    const mine = await gql(t.baseUrl, `query($id: ID!) { wallet(id: $id) { id ownerId balance { available } } }`, { id }, { as: user(owner) });
    expect(mine.body).toEqual({ data: { wallet: { id, ownerId: owner, balance: { available: "7.00" } } } });
    const theirs = await gql(t.baseUrl, `query($id: ID!) { wallet(id: $id) { id balance { available } } }`, { id }, { as: user(stranger) });
    expect(codes(theirs)).toEqual(["WALLET_NOT_FOUND"]);
    expect(theirs.body.data).toEqual({ wallet: null });
    expect((await t.api("GET", `/v1/wallets/${id}`, undefined, { as: user(stranger) })).body.code).toBe("WALLET_NOT_FOUND");
    const bad = await gql(t.baseUrl, `{ wallet(id: "nope") { id } }`);
    expect(codes(bad)).toEqual(["VALIDATION_FAILED"]);
    expect(bad.body.errors[0].extensions.errors[0].path).toBe("args.id");
    expect(bad.body.errors[0].message).not.toContain("walletId");
    // The argument is required, and REST's name is the generated field's only.
    expect((await gql(t.baseUrl, `{ wallet { id } }`)).status).toBe(400);
    expect((await gql(t.baseUrl, `query($id: ID!) { wallet(walletId: $id) { id } }`, { id })).status).toBe(400);
  });

  test("withdrawal(id:), transfer(id:), deposit(id:) read by id, with REST's not-found codes", async () => {
    const { owner, stranger } = people("owner", "stranger");
    const from = await fundedWallet(t.api, "USD", "50.00", owner);
    const to = await fundedWallet(t.api, "USD", undefined, owner);
    const w = await t.api("POST", `/v1/wallets/${from}/withdrawals`, { amount: "5.00", destination: { type: "bank", account: BANK_ACCOUNT } }, { as: user(owner) });
    expect(w.status).toBe(201);
    const tr = await t.api("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "3.00" }, { as: user(owner) });
    expect(tr.status).toBe(201);

    const q = `query($w: ID!, $t: ID!, $d: ID!) { withdrawal(id: $w) { id amount destination wallet { id } } transfer(id: $t) { id amount fromWallet { id } toWallet { id } } deposit(id: $d) { id } }`;
    const vars = { w: w.body.id, t: tr.body.id, d: crypto.randomUUID() };
    const read = await gql(t.baseUrl, q, vars, { as: user(owner) });
    expect(read.body.data.withdrawal).toMatchObject({ id: w.body.id, amount: "5.00", wallet: { id: from } });
    expect(JSON.stringify(read.body.data.withdrawal.destination)).not.toContain(BANK_ACCOUNT); // masked, as REST shows it
    expect(read.body.data.transfer).toEqual({ id: tr.body.id, amount: "3.00", fromWallet: { id: from }, toWallet: { id: to } });
    expect(read.body.data.deposit).toBeNull();
    expect(codes(read)).toEqual(["DEPOSIT_NOT_FOUND"]);

    const other = await gql(t.baseUrl, q, vars, { as: user(stranger) });
    expect(other.body.data).toEqual({ withdrawal: null, transfer: null, deposit: null });
    expect(codes(other).sort()).toEqual(["DEPOSIT_NOT_FOUND", "TRANSFER_NOT_FOUND", "WITHDRAWAL_NOT_FOUND"]);
    expect(JSON.stringify(other.body)).not.toMatch(/5\.00|3\.00/);
  });
});

describe("a chama with its members and withdrawals", () => {
  test("chama(id) { members membersList withdrawals(first, after) } as a member; an outsider gets CHAMA_NOT_FOUND", async () => {
    const p = people("a1", "a2", "m1", "outsider");
    const c = await newChama(t, { admins: [p.a1, p.a2], members: [p.m1], fund: "100.00" });
    const requested: string[] = [];
    for (const amount of ["10.00", "11.00", "12.00"]) requested.push((await c.requested(p.m1, amount)).id);

    const q = `query($id: ID!, $after: String) { chama(id: $id) { id members membersList { items { memberId role status } }
      withdrawals(first: 2, after: $after) { edges { node { id amount status destination } cursor } ${PAGE_INFO} } } }`;
    const first = await gql(t.baseUrl, q, { id: c.id }, { as: user(p.m1) });
    expect(first.body.errors).toBeUndefined();
    const chama = first.body.data.chama;
    expect(chama.id).toBe(c.id);
    expect(chama.members).toBe(3); // REST's count
    expect(chama.membersList.items.map((m: { memberId: string }) => m.memberId).sort()).toEqual([p.a1, p.a2, p.m1].sort());
    expect(chama.membersList.items.find((m: { memberId: string }) => m.memberId === p.m1)).toEqual({ memberId: p.m1, role: "member", status: "member" });
    expect(chama.withdrawals.edges).toHaveLength(2);
    expect(chama.withdrawals.pageInfo.hasNextPage).toBe(true);
    const second = await gql(t.baseUrl, q, { id: c.id, after: chama.withdrawals.pageInfo.endCursor }, { as: user(p.m1) });
    const rest = second.body.data.chama.withdrawals;
    expect(rest.edges).toHaveLength(1);
    expect(rest.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null });
    const all = [...chama.withdrawals.edges, ...rest.edges].map((e: { node: { id: string } }) => e.node.id);
    expect(all).toEqual([...requested].reverse()); // newest first, none skipped or repeated
    expect(JSON.stringify([first.body, second.body])).not.toContain(BANK_ACCOUNT);

    const outsider = await gql(t.baseUrl, q, { id: c.id }, { as: user(p.outsider) });
    expect(codes(outsider)).toEqual(["CHAMA_NOT_FOUND"]);
    expect(outsider.body.data).toEqual({ chama: null });
    expect(JSON.stringify(outsider.body)).not.toMatch(/10\.00|11\.00|12\.00/);
  });
});

describe("a nested field more sensitive than its object answers as REST would", () => {
  test("a transfer's sender sees the transfer, not the receiver's wallet: toWallet is WALLET_NOT_FOUND, as GET /v1/wallets/:id", async () => {
    const { payer, payee } = people("payer", "payee");
    const from = await fundedWallet(t.api, "USD", "20.00", payer);
    const to = await fundedWallet(t.api, "USD", "99.00", payee);
    const tr = await t.api("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "4.00" }, { as: user(payer) });
    expect(tr.status).toBe(201);
    const q = `query($id: ID!) { transfer(id: $id) { id amount fromWallet { id ownerId balance { available } } toWallet { id ownerId balance { available } } } }`;

    const sender = await gql(t.baseUrl, q, { id: tr.body.id }, { as: user(payer) });
    expect(sender.body.data.transfer).toMatchObject({ id: tr.body.id, amount: "4.00", fromWallet: { id: from, ownerId: payer }, toWallet: null });
    expect(codes(sender)).toEqual(["WALLET_NOT_FOUND"]);
    expect(sender.body.errors[0].path).toEqual(["transfer", "toWallet"]);
    expect(JSON.stringify(sender.body)).not.toContain(payee);
    expect(JSON.stringify(sender.body)).not.toMatch(/99\.00|103\.00/);
    const restAnswer = await t.api("GET", `/v1/wallets/${to}`, undefined, { as: user(payer) });
    expect(restAnswer.status).toBe(404);
    expect(restAnswer.body.code).toBe(sender.body.errors[0].extensions.code);
    expect(restAnswer.body.detail).toBe(sender.body.errors[0].message);

    // And the other way round: the receiver sees the transfer, not the sender's wallet.
    const receiver = await gql(t.baseUrl, q, { id: tr.body.id }, { as: user(payee) });
    expect(receiver.body.data.transfer).toMatchObject({ fromWallet: null, toWallet: { id: to, ownerId: payee } });
    expect(codes(receiver)).toEqual(["WALLET_NOT_FOUND"]);
    expect(JSON.stringify(receiver.body)).not.toContain(payer);
  });

  test("a chama's audit log is its admins': a plain member reads the chama but its audit is FORBIDDEN, as REST", async () => {
    const p = people("a1", "m1");
    const c = await newChama(t, { admins: [p.a1], members: [p.m1] });
    const q = `query($id: ID!) { chama(id: $id) { name audit(first: 5) { edges { node { __typename } } } } }`;
    const member = await gql(t.baseUrl, q, { id: c.id }, { as: user(p.m1) });
    expect(member.body.data).toEqual({ chama: { name: `chama of ${p.a1}`, audit: null } });
    expect(codes(member)).toEqual(["FORBIDDEN"]);
    expect((await t.api("GET", `/v1/chamas/${c.id}/audit`, undefined, { as: user(p.m1) })).body.code).toBe("FORBIDDEN");
    const admin = await gql(t.baseUrl, q, { id: c.id }, { as: user(p.a1) });
    expect(admin.body.errors).toBeUndefined();
    expect(admin.body.data.chama.audit.edges.length).toBeGreaterThan(0);
  });
});
