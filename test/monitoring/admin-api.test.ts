import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Cluster } from "../../actors/cluster";
import { connect } from "../../lib/db";
import type { HttpDeps } from "../../src/http/deps";
import { appWith } from "../support/app";
import { people, user } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { BANK, created, pay, settle, wallet } from "./support";

/**
 * The admin API's reads: transactions across wallets and chamas (filters, newest first, pages, a
 * capped range), one transaction with its journals, postings and history, stats that add up to the
 * ledger, the health of every part, and /ready.
 */
let t: TestNode;
/** What this file made, to find among whatever else the database holds. */
const made: { owner: string; eth: string; a: string; b: string; chama: string; withdrawal: string; crypto: string; transfer: string; credits: string[]; payments: string[] } = {} as never;
const started = new Date(Date.now() - 1_000).toISOString();

beforeAll(async () => {
  t = await startTestNode("monitoring-admin-api");
  const { owner, peer, admin, member } = people("owner", "peer", "admin", "member");
  made.owner = owner;
  made.a = await wallet(t, owner, "0");
  made.b = await wallet(t, peer, "0");
  made.credits = [];
  made.payments = [];
  for (const amount of ["100.00", "50.00"]) made.credits.push((await created(t, "POST", `/v1/wallets/${made.a}/credits`, { amount, reference: `topup-${amount}` })).id);
  for (const amount of ["1.00", "2.00", "3.00"]) made.payments.push((await pay(t, made.a, amount)).id);
  made.withdrawal = (await created(t, "POST", `/v1/wallets/${made.a}/withdrawals`, { amount: "5.00", destination: BANK }, user(owner))).id;
  made.eth = await wallet(t, owner, "1", "ETH");
  const eth = made.eth;
  made.crypto = (await created(t, "POST", `/v1/wallets/${eth}/withdrawals`, { amount: "0.5", destination: { type: "crypto", network: "base", address: "0x52908400098527886E0F7030069857D2E4169EE7" } }, user(owner))).id;
  made.transfer = (await created(t, "POST", "/v1/transfers", { fromWalletId: made.a, toWalletId: made.b, amount: "4.00" })).id;
  expect(await t.node.saga.idle()).toBe(true);
  made.chama = (await created(t, "POST", "/v1/chamas", { name: "Umoja", asset: "USD" }, user(admin))).id;
  await created(t, "POST", `/v1/chamas/${made.chama}/members`, { memberId: member }, user(admin));
  await created(t, "POST", `/v1/chamas/${made.chama}/deposits`, { memberId: member, amount: "20.00" });
  await settle(t);
});
afterAll(() => t.stop());

const search = async (query: string) => {
  const res = await t.api("GET", `/admin/transactions?from=${encodeURIComponent(started)}&limit=200&${query}`);
  expect(res.status).toBe(200);
  return res.body;
};

describe("GET /admin/transactions", () => {
  test("finds every kind, newest first, with each one's summary", async () => {
    const all = await search(`ownerId=${made.owner}`);
    const kinds = all.items.map((i: any) => i.kind);
    expect(kinds.filter((k: string) => k === "credit")).toHaveLength(3); // 2 in USD, 1 in ETH
    expect(kinds.filter((k: string) => k === "payment")).toHaveLength(3);
    expect(kinds.filter((k: string) => k === "withdrawal")).toHaveLength(2);
    expect(kinds.filter((k: string) => k === "transfer")).toHaveLength(1);
    const times = all.items.map((i: any) => `${i.createdAt}|${i.id}`);
    expect([...times].sort().reverse()).toEqual(times);
    expect(all.items.find((i: any) => i.id === made.transfer)).toMatchObject({ kind: "transfer", status: "settled", amount: "4.00", walletId: made.a, ownerId: made.owner, counterparty: { walletId: made.b } });
    expect(all.items.find((i: any) => i.id === made.credits[0])).toMatchObject({ kind: "credit", status: "posted", amount: "100.00", reference: "topup-100.00", walletId: made.a });
    expect(all.items.find((i: any) => i.id === made.withdrawal)).toMatchObject({ kind: "withdrawal", status: "requested", amount: "5.00", network: "bank" });
  });

  test("filters by kind, status, asset, network, wallet, chama and reference", async () => {
    expect((await search(`kind=payment&walletId=${made.a}`)).items.map((i: any) => i.id).sort()).toEqual([...made.payments].sort());
    expect((await search(`kind=withdrawal&status=requested&ownerId=${made.owner}`)).items.map((i: any) => i.id).sort()).toEqual([made.withdrawal, made.crypto].sort());
    expect((await search(`asset=ETH&kind=withdrawal&ownerId=${made.owner}`)).items.map((i: any) => i.id)).toEqual([made.crypto]);
    expect((await search(`asset=ETH&ownerId=${made.owner}`)).items.map((i: any) => i.kind)).toEqual(["withdrawal", "credit"]);
    expect((await search(`network=base`)).items.map((i: any) => i.id)).toContain(made.crypto);
    expect((await search(`network=base&ownerId=${made.owner}`)).items.map((i: any) => i.id)).toEqual([made.crypto]);
    expect((await search(`reference=topup-50.00`)).items.map((i: any) => i.id)).toEqual([made.credits[1]]);
    expect((await search(`walletId=${made.b}`)).items.map((i: any) => i.id)).toEqual([made.transfer]);
    expect((await search(`chamaId=${made.chama}`)).items).toEqual([expect.objectContaining({ kind: "chama_deposit", chamaId: made.chama, amount: "20.00", status: "posted" })]);
    expect((await search(`kind=payment&status=settled&walletId=${made.a}`)).items).toEqual([]);
  });

  test("pages newest first with no item twice and none missed", async () => {
    const all = (await search(`ownerId=${made.owner}`)).items.map((i: any) => i.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await search(`ownerId=${made.owner}&limit=3${cursor ? `&cursor=${cursor}` : ""}`.replace("limit=200&", ""));
      seen.push(...page.items.map((i: any) => i.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all);
  });

  test("the range is capped: more than 31 days, or from after to, is refused naming the field; a time range excludes what is outside it", async () => {
    const res = await t.api("GET", `/admin/transactions?from=2025-01-01T00:00:00Z&to=2025-03-01T00:00:00Z`);
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(JSON.stringify(res.body.errors)).toContain("query.from");
    expectProblem(await t.api("GET", `/admin/transactions?from=2025-03-01T00:00:00Z&to=2025-01-01T00:00:00Z`), 400, "VALIDATION_FAILED");
    expect((await t.api("GET", `/admin/transactions?to=${encodeURIComponent(started)}&ownerId=${made.owner}`)).body.items).toEqual([]);
    expectProblem(await t.api("GET", "/admin/transactions?cursor=bogus"), 400, "VALIDATION_FAILED");
  });
});

describe("GET /admin/transactions/:transactionId", () => {
  test("a transfer with its journals, balanced postings and state history", async () => {
    const res = await t.api("GET", `/admin/transactions/${made.transfer}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: made.transfer, kind: "transfer", status: "settled", amount: "4.00" });
    expect(res.body.journals.map((j: any) => j.kind)).toEqual(["transfer_reserve", "transfer_credit"]);
    for (const j of res.body.journals) {
      expect(j.postings).toHaveLength(2);
      expect(j.postings.map((p: any) => p.amount).sort()).toEqual(["-4.00", "4.00"]);
    }
    expect(res.body.history.map((h: any) => h.status)).toEqual(["pending", "credited", "settled"]);
    expect(res.body.external).toEqual([]);
  });

  test("a payment is its journal; a withdrawal has its history and no journal until it completes", async () => {
    const payment = (await t.api("GET", `/admin/transactions/${made.payments[0]}`)).body;
    expect(payment).toMatchObject({ kind: "payment", status: "posted", amount: "1.00", history: [{ type: "wallet.paid", status: "posted" }] });
    expect(payment.journals).toEqual([expect.objectContaining({ id: made.payments[0], kind: "payment", postings: [{ account: made.a, amount: "-1.00" }, { account: "system:payments", amount: "1.00" }] })]);
    const withdrawal = (await t.api("GET", `/admin/transactions/${made.withdrawal}`)).body;
    expect(withdrawal).toMatchObject({ kind: "withdrawal", journals: [], history: [{ type: "withdrawal.changed", status: "requested" }] });
    expect(JSON.stringify(withdrawal)).not.toContain("3704");
    expectProblem(await t.api("GET", `/admin/transactions/${crypto.randomUUID()}`), 404, "NOT_FOUND");
  });

  test("a card deposit names its Stripe PaymentIntent", async () => {
    if (!t.stripe) return;
    const d = await created(t, "POST", `/v1/wallets/${made.a}/deposits`, { amount: "10.00" }, user(made.owner));
    const res = await t.api("GET", `/admin/transactions/${d.id}`);
    expect(res.body).toMatchObject({ kind: "deposit", external: [{ system: "stripe", kind: "payment_intent", id: d.stripe.paymentIntentId }] });
  });
});

describe("GET /admin/stats", () => {
  test("daily counts and sums equal the ledger's own", async () => {
    const res = await t.api("GET", `/admin/stats/daily?from=${encodeURIComponent(started)}`);
    expect(res.status).toBe(200);
    const ledger = await t.node.db`select j.kind, j.asset, count(*)::int as count, sum(p.amount)::text as amount
      from journals j join postings p on p.journal_id = j.id and p.amount > 0 where j.created_at >= ${started} group by 1, 2`;
    const fromStats = new Map<string, { count: number; minor: bigint }>();
    // A decimal with exactly the asset's scale: its digits are the minor units.
    const minor = (text: string) => BigInt(text.replace(".", ""));
    for (const i of res.body.items) {
      const key = `${i.kind}/${i.asset}`;
      const prior = fromStats.get(key) ?? { count: 0, minor: 0n };
      fromStats.set(key, { count: prior.count + i.count, minor: prior.minor + minor(i.amount) });
    }
    expect(fromStats.size).toBe(ledger.length);
    for (const row of ledger) {
      const stat = fromStats.get(`${row.kind}/${row.asset}`)!;
      expect({ key: `${row.kind}/${row.asset}`, count: stat.count }).toEqual({ key: `${row.kind}/${row.asset}`, count: row.count });
      expect(stat.minor).toBe(BigInt(row.amount as string));
    }
    expect(fromStats.get("payment/USD")?.count).toBeGreaterThanOrEqual(3);
  });

  test("per network and per status", async () => {
    const network = (await t.api("GET", `/admin/stats/network?from=${encodeURIComponent(started)}`)).body;
    expect(network.items).toContainEqual({ network: "base", asset: "ETH", status: "requested", count: 1, amount: "0.500000000000000000" });
    expect(network.items).toContainEqual(expect.objectContaining({ network: "bank", asset: "USD", status: "requested" }));
    const status = (await t.api("GET", `/admin/stats/status?from=${encodeURIComponent(started)}`)).body;
    expect(status.items).toContainEqual(expect.objectContaining({ kind: "transfer", status: "settled", asset: "USD" }));
    const [row] = await t.node.db`select count(*)::int as n, sum(amount)::text as s from transfers where status = 'settled' and created_at >= ${started} and to_wallet_id is not null`;
    const settled = status.items.find((i: any) => i.kind === "transfer" && i.status === "settled" && i.asset === "USD");
    expect({ count: settled.count, minor: BigInt(settled.amount.replace(".", "")) }).toEqual({ count: row!.n, minor: BigInt(row!.s) });
  });

  test("a range longer than 92 days is refused", async () => {
    expectProblem(await t.api("GET", "/admin/stats/daily?from=2025-01-01T00:00:00Z&to=2025-06-01T00:00:00Z"), 400, "VALIDATION_FAILED");
  });
});

describe("GET /admin/health", () => {
  test("every part with its state and latency", async () => {
    const res = await t.api("GET", "/admin/health");
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.components.map((c: any) => [c.name, c]));
    expect(byName.postgres).toMatchObject({ state: "ok" });
    expect(byName.postgres.latencyMs).toBeNumber();
    expect(byName.nats).toMatchObject({ state: "not_configured" });
    expect(byName.jetstream_relay).toMatchObject({ state: "not_configured" });
    expect(byName.outbox.details).toMatchObject({ sagaPending: 0 });
    expect(byName.monitoring.details).toMatchObject({ behindEvents: expect.any(Number) });
    expect(byName.stripe.state).toBe(t.stripe ? "ok" : "not_configured");
    expect(res.body.networks).toEqual([]);
  });

  test("a registered network probe shows; one that fails is down, without its message", async () => {
    t.node.admin.health.registerNetwork("base", async () => ({ ok: true, details: { block: 123 } }));
    t.node.admin.health.registerNetwork("solana", async () => {
      throw new Error("connect ECONNREFUSED https://user:secret@rpc.example");
    });
    const res = await t.api("GET", "/admin/health");
    const byName = Object.fromEntries(res.body.components.map((c: any) => [c.name, c]));
    expect(byName["network:base"]).toMatchObject({ state: "ok", details: { block: 123 } });
    expect(byName["network:solana"]).toMatchObject({ state: "down" });
    expect(JSON.stringify(res.body)).not.toContain("secret");
    expect(res.body.status).toBe("down");
  });
});

describe("GET /ready", () => {


  test("answers anyone 200 `ready` and nothing more while the node should take traffic", async () => {
    const res = await t.api("GET", "/ready", undefined, { token: null });
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: { status: "ready" } });
  });

  test("503 `unavailable`, without a reason, when the cluster is unhealthy or has not settled its shards, or the database does not answer", async () => {
    const cases: Partial<HttpDeps>[] = [
      { cluster: { health: () => ({ ok: false, reason: "node-7 dead" }), settled: () => true } as unknown as Cluster },
      { cluster: { health: () => ({ ok: true }), settled: () => false } as unknown as Cluster },
    ];
    for (const parts of cases) {
      const res = await (await appWith(t, parts)).request("/ready");
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 503, body: { status: "unavailable" } });
    }
    const settled = await (await appWith(t, { cluster: { health: () => ({ ok: true }), settled: () => true } as unknown as Cluster })).request("/ready");
    expect(settled.status).toBe(200);
    const dead = connect("postgres://postgres@127.0.0.1:1/nothing", 1);
    try {
      const res = await (await appWith(t, { db: dead })).request("/ready");
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 503, body: { status: "unavailable" } });
    } finally {
      await dead.end({ timeout: 1 });
    }
  });

  test("503 while a migration this build knows is not applied", async () => {
    await t.node.db`delete from schema_migrations where name = '013_monitoring.sql'`;
    try {
      expect((await t.api("GET", "/ready", undefined, { token: null })).status).toBe(503);
    } finally {
      await t.node.db`insert into schema_migrations (name) values ('013_monitoring.sql')`;
    }
    expect((await t.api("GET", "/ready", undefined, { token: null })).status).toBe(200);
  });
});
