import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { startNode } from "../../src/node";
import { testKeys, type As } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { type Chama, expectOk, expectProblem, newChama, PROCESSOR, people, user, verifyIsClean } from "./support";

/**
 * Personal and group wallets meet, over REST: a member funds the chama from their own wallet (a
 * contribution: the wallet reserves, the chama credits it to them, the wallet settles, or voids
 * when the chama refuses), and a chama pays a member into their wallet (a withdrawal with a wallet
 * destination: approved as any other; continued, the chama posts it to transit and the wallet is
 * credited, or refuses and the withdrawal fails with the money back). Both are driven by the
 * transfer saga from the outbox, so each step is keyed and a restart resumes where it stopped.
 */
let t: TestNode;

beforeAll(async () => {
  t = await startTestNode("chamawallets");
});
afterAll(() => t.stop());

/** The saga has no step left to take (every transfer settled or voided). */
async function settled(node = t.node): Promise<void> {
  expect(await node.saga.idle()).toBe(true);
}

async function walletOf(ownerId: string, fund?: string, asset = "USD"): Promise<string> {
  const wallet = expectOk(await t.api("POST", "/v1/wallets", { ownerId, asset }), 201);
  if (fund) expectOk(await t.api("POST", `/v1/wallets/${wallet.id}/credits`, { amount: fund }), 201);
  return wallet.id;
}

async function balanceOf(walletId: string): Promise<{ posted: string; held: string; available: string }> {
  return expectOk(await t.api("GET", `/v1/wallets/${walletId}`)).balance;
}

/** The wallet's transactions, oldest first, as kind and amount. */
async function transactionsOf(walletId: string, as?: As): Promise<{ kind: string; amount: string }[]> {
  const page = expectOk(await t.api("GET", `/v1/wallets/${walletId}/transactions?limit=200`, undefined, as ? { as } : {}));
  return page.items.map((i: { kind: string; amount: string }) => ({ kind: i.kind, amount: i.amount })).reverse();
}

/** The chama's own postings, oldest first, as journal kind and amount (minor units). */
async function chamaPostings(chamaId: string): Promise<{ kind: string; amount: string }[]> {
  const rows = await t.node.db`select j.kind, p.amount::text from postings p join journals j on j.id = p.journal_id where p.account = ${chamaId} order by p.id`;
  return rows.map((r) => ({ kind: r.kind, amount: r.amount }));
}

async function transferRow(id: string) {
  const [row] = await t.node.db`select from_wallet_id, to_wallet_id, to_chama_id, amount::text, status, reason from transfers where id = ${id}`;
  return row ? { ...row } : undefined;
}

function contribute(chama: Chama, who: string | As, fromWalletId: string, amount: string, key?: string) {
  return chama.call("POST", "/contributions", { fromWalletId, amount }, who, key ? { key } : {});
}

describe("a member funds the chama from their own wallet", () => {
  test("the wallet reserves, the chama credits it to the member, the wallet settles: balances, contributions, audit and both ledgers agree", async () => {
    const p = people("admin", "member");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member], fund: "10.00" });
    const wallet = await walletOf(p.member, "100.00");

    const answer = expectOk(await contribute(chama, p.member, wallet, "30.00"), 201);
    expect(answer).toMatchObject({ chamaId: chama.id, fromWalletId: wallet, memberId: p.member, asset: "USD", amount: "30.00", status: "pending" });
    await settled();

    expect(await balanceOf(wallet)).toMatchObject({ posted: "70.00", held: "0.00", available: "70.00" });
    expect(await chama.balance()).toEqual({ posted: "40.00", held: "0.00", available: "40.00" });
    expect(await chama.member(p.member)).toMatchObject({ contributed: "30.00", share: "0.7500" });
    expect(await transactionsOf(wallet)).toEqual([
      { kind: "credit", amount: "100.00" },
      { kind: "transfer_reserve", amount: "-30.00" },
    ]);
    expect(await chamaPostings(chama.id)).toEqual([
      { kind: "chama_deposit", amount: "1000" },
      { kind: "chama_contribution", amount: "3000" },
    ]);
    expect(await transferRow(answer.id)).toEqual({ from_wallet_id: wallet, to_wallet_id: null, to_chama_id: chama.id, amount: "3000", status: "settled", reason: null });
    const [entry] = (await chama.audit()).filter((a) => a.action === "chama.transfer.credit");
    expect(entry).toMatchObject({ actor: p.member, target: p.member, via: `transfer:${answer.id}`, before: { contributed: "0.00" }, after: { contributed: "30.00" } });
    await verifyIsClean(t);
  });

  test("the same request retried with its key answers the first answer and moves the money once", async () => {
    const p = people("admin", "member");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member] });
    const wallet = await walletOf(p.member, "50.00");
    const key = `contribute-${crypto.randomUUID()}`;
    const first = expectOk(await contribute(chama, p.member, wallet, "20.00", key), 201);
    const again = await Promise.all([1, 2, 3].map(() => contribute(chama, p.member, wallet, "20.00", key)));
    for (const a of again) expect({ status: a.status, body: a.body }).toEqual({ status: 201, body: first });
    await settled();
    expect(expectOk(await contribute(chama, p.member, wallet, "20.00", key), 201)).toEqual(first);
    expectProblem(await contribute(chama, p.member, wallet, "21.00", key), 422, "IDEMPOTENCY_CONFLICT");
    await settled();
    expect(await balanceOf(wallet)).toMatchObject({ posted: "30.00" });
    expect(await chama.member(p.member)).toMatchObject({ contributed: "20.00" });
    expect(await chama.journals("chama_contribution")).toBe(1);
    await verifyIsClean(t);
  });

  test("a frozen chama refuses it when it arrives: the contribution is voided and the wallet gets its money back", async () => {
    const p = people("admin", "member");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member] });
    const wallet = await walletOf(p.member, "50.00");
    expectOk(await chama.call("POST", "/freeze", {}, p.admin));

    const answer = expectOk(await contribute(chama, p.member, wallet, "20.00"), 201);
    expect(answer.status).toBe("pending");
    await settled();
    expect(await transferRow(answer.id)).toMatchObject({ status: "voided", reason: "CHAMA_FROZEN" });
    expect(await balanceOf(wallet)).toMatchObject({ posted: "50.00", held: "0.00", available: "50.00" });
    expect(await transactionsOf(wallet)).toEqual([
      { kind: "credit", amount: "50.00" },
      { kind: "transfer_reserve", amount: "-20.00" },
      { kind: "transfer_void", amount: "20.00" },
    ]);
    expect(await chama.balance()).toMatchObject({ posted: "0.00" });
    expect(await chama.member(p.member)).toMatchObject({ contributed: "0.00" });
    await verifyIsClean(t);
  });

  test("someone who is no longer (or not yet) a member gets their money back: voided NOT_A_MEMBER", async () => {
    const p = people("admin", "member", "leaver", "invitee");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member, p.leaver] });
    expectOk(await chama.call("POST", `/members/${p.leaver}/remove`, {}, p.leaver));
    expectOk(await chama.call("POST", "/invitations", { memberId: p.invitee }, p.admin), 201);
    for (const who of [p.leaver, p.invitee]) {
      const wallet = await walletOf(who, "10.00");
      const answer = expectOk(await contribute(chama, who, wallet, "4.00"), 201);
      await settled();
      expect(await transferRow(answer.id)).toMatchObject({ status: "voided", reason: "NOT_A_MEMBER" });
      expect(await balanceOf(wallet)).toMatchObject({ posted: "10.00", available: "10.00" });
    }
    expect(await chama.balance()).toMatchObject({ posted: "0.00" });
    await verifyIsClean(t);
  });

  test("refused at once: more than the wallet has, another's wallet, another asset, a chama that is not yours", async () => {
    const p = people("admin", "member", "other", "stranger");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member, p.other] });
    const wallet = await walletOf(p.member, "5.00");
    const othersWallet = await walletOf(p.other, "5.00");
    const euros = await walletOf(p.member, "5.00", "EUR");
    const before = await chama.view();
    expectProblem(await contribute(chama, p.member, wallet, "6.00"), 409, "INSUFFICIENT_FUNDS");
    expectProblem(await contribute(chama, p.member, othersWallet, "1.00"), 404, "WALLET_NOT_FOUND");
    expectProblem(await contribute(chama, p.member, euros, "1.00"), 422, "ASSET_MISMATCH");
    expectProblem(await contribute(chama, p.member, crypto.randomUUID(), "1.00"), 404, "WALLET_NOT_FOUND");
    expectProblem(await contribute(chama, p.stranger, await walletOf(p.stranger, "5.00"), "1.00"), 404, "CHAMA_NOT_FOUND");
    expectProblem(await contribute(chama, { sub: "auditor-1", role: "auditor" }, wallet, "1.00"), 403, "FORBIDDEN");
    await settled();
    expect(await chama.view()).toEqual(before);
    expect(await balanceOf(wallet)).toMatchObject({ posted: "5.00" });
    expect(await t.node.db`select 1 from transfers where from_wallet_id = ${wallet}`).toHaveLength(0);
  });

  test("a service that may move the wallet's money contributes it, credited to the wallet's owner", async () => {
    const p = people("admin", "member");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member] });
    const wallet = await walletOf(p.member, "10.00");
    const service: As = { sub: "svc-savings", role: "service", perms: ["transfers:write"] };
    expect(expectOk(await contribute(chama, service, wallet, "3.00"), 201)).toMatchObject({ memberId: p.member });
    await settled();
    expect(await chama.member(p.member)).toMatchObject({ contributed: "3.00" });
  });
});

describe("a chama pays a member into their wallet", () => {
  async function setup(fund = "100.00") {
    const p = people("admin", "member");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member], fund });
    const wallet = await walletOf(p.member, "1.00");
    return { p, chama, wallet };
  }
  const intoWallet = (walletId: string) => ({ type: "wallet", walletId });

  test("requested, approved and continued, the saga moves it: completed, the wallet credited, the books whole", async () => {
    const { p, chama, wallet } = await setup();
    const requested = expectOk(await chama.call("POST", "/withdrawals", { amount: "40.00", destination: intoWallet(wallet) }, p.member), 201);
    expect(requested).toMatchObject({ status: "pending_approval", destination: { type: "wallet", walletId: wallet } });
    expect(await chama.balance()).toEqual({ posted: "100.00", held: "40.00", available: "60.00" });
    expectOk(await chama.step(requested.id, "approve", p.admin));
    expect(expectOk(await chama.step(requested.id, "continue", p.member)).status).toBe("processing");
    await settled();

    const done = await chama.withdrawal(requested.id);
    expect(done).toMatchObject({ status: "completed", destination: { type: "wallet", walletId: wallet } });
    expect(await chama.balance()).toEqual({ posted: "60.00", held: "0.00", available: "60.00" });
    expect(await balanceOf(wallet)).toMatchObject({ posted: "41.00", held: "0.00", available: "41.00" });
    expect(await chama.member(p.member)).toMatchObject({ withdrawn: "40.00" });
    expect(await transactionsOf(wallet, user(p.member))).toEqual([
      { kind: "credit", amount: "1.00" },
      { kind: "transfer_credit", amount: "40.00" },
    ]);
    expect(await chamaPostings(chama.id)).toEqual([
      { kind: "chama_deposit", amount: "10000" },
      { kind: "chama_withdrawal", amount: "-4000" },
    ]);
    const actions = (await chama.audit()).map((a) => `${a.action}:${a.actor}`).reverse();
    expect(actions.slice(-3)).toEqual([`chama.withdrawal.review:${p.admin}`, `chama.withdrawal.continue:${p.member}`, "chama.withdrawal.settle:system"]);
    // Coffer finished it; a payout processor has nothing to report.
    expectProblem(await chama.step(requested.id, "complete", PROCESSOR), 409, "INVALID_TRANSITION");
    await verifyIsClean(t);
  });

  test("the wallet refuses it (frozen): the withdrawal fails and the chama has its money back", async () => {
    const { p, chama, wallet } = await setup();
    const requested = expectOk(await chama.call("POST", "/withdrawals", { amount: "25.00", destination: intoWallet(wallet) }, p.member), 201);
    expectOk(await chama.step(requested.id, "approve", p.admin));
    expectOk(await t.api("POST", `/v1/wallets/${wallet}/freeze`, {}));
    expect(expectOk(await chama.step(requested.id, "continue", p.member)).status).toBe("processing");
    await settled();

    expect(await chama.withdrawal(requested.id)).toMatchObject({ status: "failed", reason: "WALLET_FROZEN" });
    expect(await chama.balance()).toEqual({ posted: "100.00", held: "0.00", available: "100.00" });
    expect(await balanceOf(wallet)).toMatchObject({ posted: "1.00" });
    expect(await chama.member(p.member)).toMatchObject({ withdrawn: "0.00" });
    expect(await chamaPostings(chama.id)).toEqual([
      { kind: "chama_deposit", amount: "10000" },
      { kind: "chama_withdrawal", amount: "-2500" },
      { kind: "chama_withdrawal_void", amount: "2500" },
    ]);
    expect((await chama.audit())[0]).toMatchObject({ action: "chama.withdrawal.void", actor: "system", note: "WALLET_FROZEN" });
    await verifyIsClean(t);
  });

  test("continue retried with its key, and continued again, moves the money once", async () => {
    const { p, chama, wallet } = await setup();
    const requested = expectOk(await chama.call("POST", "/withdrawals", { amount: "10.00", destination: intoWallet(wallet) }, p.member), 201);
    expectOk(await chama.step(requested.id, "approve", p.admin));
    const key = `continue-${crypto.randomUUID()}`;
    const first = await chama.step(requested.id, "continue", p.member, {}, { key });
    expect(first.status).toBe(200);
    const again = await chama.step(requested.id, "continue", p.member, {}, { key });
    expect({ status: again.status, body: again.body }).toEqual({ status: first.status, body: first.body });
    await settled();
    expectProblem(await chama.step(requested.id, "continue", p.member), 409, "INVALID_TRANSITION");
    await settled();
    expect(await balanceOf(wallet)).toMatchObject({ posted: "11.00" });
    expect(await chama.balance()).toMatchObject({ posted: "90.00", held: "0.00" });
    expect(await chama.journals("chama_withdrawal")).toBe(1);
    await verifyIsClean(t);
  });

  test("only into the requester's own wallet, in the chama's asset", async () => {
    const { p, chama } = await setup();
    const q = people("other");
    const othersWallet = await walletOf(q.other, "1.00");
    const euros = await walletOf(p.member, undefined, "EUR");
    const before = await chama.view();
    expectProblem(await chama.call("POST", "/withdrawals", { amount: "1.00", destination: intoWallet(othersWallet) }, p.member), 404, "WALLET_NOT_FOUND");
    expectProblem(await chama.call("POST", "/withdrawals", { amount: "1.00", destination: intoWallet(crypto.randomUUID()) }, p.member), 404, "WALLET_NOT_FOUND");
    expectProblem(await chama.call("POST", "/withdrawals", { amount: "1.00", destination: intoWallet(euros) }, p.member), 422, "ASSET_MISMATCH");
    expectProblem(await chama.call("POST", "/withdrawals", { amount: "1.00", destination: { type: "wallet", walletId: "nope" } }, p.member), 400, "VALIDATION_FAILED");
    // A personal wallet's withdrawal never goes into a wallet: that is what transfers are for.
    expectProblem(await t.api("POST", `/v1/wallets/${euros}/withdrawals`, { amount: "1.00", destination: intoWallet(othersWallet) }), 400, "VALIDATION_FAILED");
    expect(await chama.view()).toEqual(before);
  });
});

describe("the saga's steps", () => {
  test("run again, every one of them and in any order, replays: the money moves once", async () => {
    const p = people("admin", "member", "frozen");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member, p.frozen], fund: "100.00" });
    const wallet = await walletOf(p.member, "50.00");
    const frozen = await walletOf(p.frozen, "1.00");
    expectOk(await contribute(chama, p.member, wallet, "5.00"), 201);
    const paid = expectOk(await chama.call("POST", "/withdrawals", { amount: "7.00", destination: { type: "wallet", walletId: wallet } }, p.member), 201);
    const refused = expectOk(await chama.call("POST", "/withdrawals", { amount: "3.00", destination: { type: "wallet", walletId: frozen } }, p.frozen), 201);
    for (const w of [paid, refused]) expectOk(await chama.step(w.id, "approve", p.admin));
    expectOk(await t.api("POST", `/v1/wallets/${frozen}/freeze`, {}));
    expectOk(await chama.step(paid.id, "continue", p.member));
    expectOk(await chama.step(refused.id, "continue", p.frozen));
    await settled();
    const state = async () => ({
      wallet: await balanceOf(wallet),
      frozen: await balanceOf(frozen),
      chama: await chama.balance(),
      member: await chama.member(p.member),
      withdrawals: (await chama.withdrawals()).map((w) => `${w.id}:${w.status}`).sort(),
      journals: (await t.node.db`select count(*)::int as n from journals`)[0]!.n,
    });
    const before = await state();

    // As if the saga had crashed after every step committed but before it marked its event done:
    // every event is pending again, the newest first, and the saga runs them all once more.
    const events = await t.node.db`update outbox set saga_pending = true
      where type in ('transfer.reserved', 'transfer.credited', 'chama.transfer.credited', 'chama.withdrawal.changed')
        and (payload->>'chamaId' = ${chama.id} or payload->>'toChamaId' = ${chama.id} or payload->>'fromChamaId' = ${chama.id})
        and (type <> 'chama.withdrawal.changed' or payload->>'status' = 'processing')
      returning type`;
    expect(events.map((e) => e.type).sort()).toEqual(
      ["chama.transfer.credited", "chama.withdrawal.changed", "chama.withdrawal.changed", "transfer.credited", "transfer.reserved"].sort(),
    );
    await settled();
    expect(await state()).toEqual(before);

    // Each step sent again by hand, in reverse order, with the keys the saga uses: replays only.
    const [contribution] = await t.node.db`select id from transfers where to_chama_id = ${chama.id}`;
    const c = contribution!.id as string;
    const replies = [
      await t.node.chamas.system(chama.id, `transfer:${paid.id}:settle`, { type: "chama.withdrawal.settle", withdrawalId: paid.id, at: t.node.chamas.now() }),
      await t.node.ops.system(wallet, `transfer:${paid.id}:credit`, { type: "transfer.credit", transferId: paid.id, journalId: crypto.randomUUID(), fromChamaId: chama.id, asset: "USD", amount: 700n, at: new Date().toISOString() }),
      await t.node.ops.system(wallet, `transfer:${c}:settle`, { type: "transfer.settle", transferId: c, at: new Date().toISOString() }),
      await t.node.chamas.system(chama.id, `transfer:${c}:credit`, { type: "chama.transfer.credit", transferId: c, journalId: crypto.randomUUID(), memberId: p.member, fromWalletId: wallet, amount: 500n, at: t.node.chamas.now() }),
      await t.node.chamas.system(chama.id, `transfer:${refused.id}:void`, { type: "chama.withdrawal.void", withdrawalId: refused.id, journalId: crypto.randomUUID(), reason: "WALLET_FROZEN", at: t.node.chamas.now() }),
    ];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    // Out of turn with fresh keys, the machines refuse what is over: nothing moves either.
    const late = [
      await t.node.chamas.system(chama.id, `late:${crypto.randomUUID()}`, { type: "chama.withdrawal.settle", withdrawalId: paid.id, at: t.node.chamas.now() }),
      await t.node.chamas.system(chama.id, `late:${crypto.randomUUID()}`, { type: "chama.withdrawal.void", withdrawalId: paid.id, journalId: crypto.randomUUID(), reason: "late", at: t.node.chamas.now() }),
      await t.node.ops.system(wallet, `late:${crypto.randomUUID()}`, { type: "transfer.void", transferId: c, journalId: crypto.randomUUID(), reason: "late", at: new Date().toISOString() }),
    ];
    expect(late.map((r) => r.body.code)).toEqual(["INVALID_TRANSITION", "INVALID_TRANSITION", "INVALID_TRANSITION"]);
    expect(await state()).toEqual(before);
    expect(before).toMatchObject({
      wallet: { posted: "52.00" }, // 50 − 5 contributed + 7 paid in
      frozen: { posted: "1.00" },
      chama: { posted: "98.00", held: "0.00" }, // 100 + 5 − 7 (the refused 3 came back)
    });
    await verifyIsClean(t);
  });

  test("a node that stopped mid-saga: the next one on the same database finishes every transfer", async () => {
    const p = people("admin", "member");
    const chama = await newChama(t, { admins: [p.admin], members: [p.member], fund: "100.00" });
    const wallet = await walletOf(p.member, "50.00");
    const requested = expectOk(await chama.call("POST", "/withdrawals", { amount: "8.00", destination: { type: "wallet", walletId: wallet } }, p.member), 201);
    expectOk(await chama.step(requested.id, "approve", p.admin));
    await settled();

    // The saga stops (as if the process died): the money leaves, and waits in transit.
    await t.node.saga.stop();
    const contribution = expectOk(await contribute(chama, p.member, wallet, "6.00"), 201);
    expectOk(await chama.step(requested.id, "continue", p.member));
    expect(await balanceOf(wallet)).toMatchObject({ posted: "44.00" });
    expect(await chama.balance()).toMatchObject({ posted: "92.00", held: "0.00" });
    expect(await transferRow(contribution.id)).toMatchObject({ status: "pending" });
    expect((await chama.withdrawal(requested.id)).status).toBe("processing");
    await verifyIsClean(t);

    // Another node on the same database picks the pending steps up from the outbox.
    const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", DATABASE_URL: t.db.url });
    const next = await startNode(config, t.db.url);
    try {
      await settled(next);
      expect(await transferRow(contribution.id)).toMatchObject({ status: "settled" });
      expect((await chama.withdrawal(requested.id)).status).toBe("completed");
      expect(await balanceOf(wallet)).toMatchObject({ posted: "52.00" });
      expect(await chama.balance()).toMatchObject({ posted: "98.00", held: "0.00" });
      expect(await chama.member(p.member)).toMatchObject({ contributed: "6.00", withdrawn: "8.00" });
    } finally {
      await next.close();
    }
    await verifyIsClean(t);
  });
});
