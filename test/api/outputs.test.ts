import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { z } from "zod";
import type { Operation } from "../../src/api/operation";
import { OPERATIONS, operationNamed } from "../../src/api/operations";
import { Problem } from "../../src/api/outputs";
import { ADMIN, type As } from "../support/auth";
import { NATS_URL, deleteClusterState } from "../support/nats";
import { startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { stripeSettled } from "../support/stripe";
import { parseNetworks } from "../../src/integrations/chain/config";

/**
 * Every operation's `output` schema says what it really answers: a successful call of each table
 * entry over REST, on a real node, parses with the entry's schema, and the schema names every
 * field the answer has (parsing keeps only named fields, so the parsed answer must equal the
 * answer). A new table entry without a call here fails the last test, by name.
 */
let t: TestNode;
const covered = new Map<string, number>();

beforeAll(async () => {
  t = await startTestNode("outputs");
});
afterAll(async () => {
  await t?.stop();
});

const user = (sub: string): As => ({ sub, role: "user" });
const BANK = { type: "bank", account: "DE89 3704 0044 0532 0130 00" };
const CRYPTO = { type: "crypto", network: "ethereum", address: "0x52908400098527886E0F7030069857D2E4169EE7" };
/** Another bank account (a second new destination for monitoring). */
const CRYPTO_USD_BANK = { type: "bank", account: "GB82 WEST 1234 5698 7654 32" };

/** Checks an answer against a schema: it parses, and nothing in it is left unnamed. */
function conforms(schema: z.ZodType, body: unknown, what: string): void {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new Error(`${what}: the answer does not match its output schema: ${parsed.error.message}\n${JSON.stringify(body)}`);
  expect(parsed.data, `${what}: fields the schema does not name`).toEqual(body as never);
}

/**
 * Calls the operation `name` over REST: `:params` from `params`, the rest as the query (GET) or
 * the JSON body (POST). Expects the operation's success status and checks the answer with its
 * output schema.
 */
async function call(name: string, params: Record<string, string> = {}, input?: Record<string, unknown>, as: As = ADMIN): Promise<any> {
  const op = operationNamed(name);
  if (!op) throw new Error(`no operation named ${name}`);
  const path = op.path.replace(/:([A-Za-z0-9_]+)/g, (_m, p: string) => {
    const value = params[p];
    if (value === undefined) throw new Error(`${name}: give ${p}`);
    return encodeURIComponent(value);
  });
  const query = op.method === "GET" && input ? `?${new URLSearchParams(Object.entries(input).map(([k, v]): [string, string] => [k, String(v)]))}` : "";
  const res: ApiResponse = await t.api(op.method, path + query, op.method === "POST" ? (input ?? {}) : undefined, { as });
  if (res.status !== op.status) throw new Error(`${name}: expected ${op.status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  expect(res.headers.get("content-type") ?? "").toStartWith("application/json");
  conforms(op.output, res.body, name);
  covered.set(name, (covered.get(name) ?? 0) + 1);
  return res.body;
}

describe("wallets", () => {
  test("opening, reading, moving money, listing, freezing and closing answer as their schemas say", async () => {
    const wallet = await call("wallets.create", {}, { ownerId: "owner-outputs", asset: "USD" });
    expect(wallet.status).toBe("active");
    const walletId = wallet.id as string;
    const credit = await call("wallets.credits.create", { walletId }, { amount: "100.00", reference: "topup-1" });
    expect(credit).toMatchObject({ kind: "credit", amount: "100.00", reference: "topup-1", balance: { available: "100.00" } });
    const payment = await call("wallets.payments.create", { walletId }, { amount: "2.50" });
    expect(payment).toMatchObject({ kind: "payment", amount: "2.50", balance: { available: "97.50" } });
    expect(payment.reference).toBeUndefined();
    expect((await call("wallets.get", { walletId })).version).toBeNumber();

    const first = await call("wallets.transactions.list", { walletId }, { limit: 1 });
    expect(first.items).toHaveLength(1);
    expect(first.nextCursor).toBeString();
    const last = await call("wallets.transactions.list", { walletId }, { limit: 50, cursor: first.nextCursor });
    expect(last.nextCursor).toBeNull();

    expect((await call("wallets.freeze", { walletId })).status).toBe("frozen");
    expect((await call("wallets.unfreeze", { walletId })).status).toBe("active");

    const empty = await call("wallets.create", {}, { ownerId: "owner-outputs", asset: "BTC" });
    expect((await call("wallets.close", { walletId: empty.id })).status).toBe("closed");
  }, 30_000);

  test("withdrawals: request, read, process, complete, fail and cancel", async () => {
    const wallet = await call("wallets.create", {}, { ownerId: "owner-withdraws", asset: "EUR" });
    const walletId = wallet.id as string;
    await call("wallets.credits.create", { walletId }, { amount: "50.00" });

    const requested = await call("wallets.withdrawals.create", { walletId }, { amount: "5.00", destination: BANK });
    expect(requested).toMatchObject({ status: "requested", destination: { type: "bank", account: "****3000" } });
    expect((await call("withdrawals.get", { withdrawalId: requested.id })).createdAt).toBeString();
    expect((await call("withdrawals.process", { withdrawalId: requested.id })).status).toBe("processing");
    expect((await call("withdrawals.complete", { withdrawalId: requested.id })).status).toBe("completed");

    const eth = (await call("wallets.create", {}, { ownerId: "owner-withdraws", asset: "ETH" })).id as string;
    await call("wallets.credits.create", { walletId: eth }, { amount: "2.5" });
    const toFail = await call("wallets.withdrawals.create", { walletId: eth }, { amount: "1.0", destination: CRYPTO });
    expect(toFail.destination).toEqual({ type: "crypto", network: "ethereum", address: "0x5290…9EE7" });
    expect(await call("withdrawals.fail", { withdrawalId: toFail.id }, { reason: "bank refused" })).toMatchObject({ status: "failed", reason: "bank refused" });
    expect((await call("withdrawals.get", { withdrawalId: toFail.id })).reason).toBe("bank refused");

    const toCancel = await call("wallets.withdrawals.create", { walletId }, { amount: "1.00", destination: BANK });
    expect((await call("withdrawals.cancel", { withdrawalId: toCancel.id })).status).toBe("cancelled");
  }, 30_000);

  test("transfers: pending when accepted, then settled, or voided with a reason", async () => {
    const from = (await call("wallets.create", {}, { ownerId: "owner-sender", asset: "USD" })).id as string;
    const to = (await call("wallets.create", {}, { ownerId: "owner-receiver", asset: "USD" })).id as string;
    await call("wallets.credits.create", { walletId: from }, { amount: "20.00" });

    const transfer = await call("transfers.create", {}, { fromWalletId: from, toWalletId: to, amount: "3.00" });
    expect(transfer.status).toBe("pending");
    expect(await t.node.saga.idle()).toBe(true);
    expect((await call("transfers.get", { transferId: transfer.id })).status).toBe("settled");

    await call("wallets.freeze", { walletId: to });
    const refused = await call("transfers.create", {}, { fromWalletId: from, toWalletId: to, amount: "1.00" });
    expect(await t.node.saga.idle()).toBe(true);
    const voided = await call("transfers.get", { transferId: refused.id });
    expect(voided.status).toBe("voided");
    expect(voided.reason).toBeString();
  }, 30_000);
});

describe("chamas", () => {
  const run = crypto.randomUUID().slice(0, 8);
  const [A, B, C, D, E] = ["admin", "second", "member", "leaver", "invitee"].map((n) => `${n}-${run}`) as [string, string, string, string, string];

  test("the chama, its members, rules, deposits, withdrawals in every outcome, and its audit log", async () => {
    const chama = await call("chamas.create", {}, { name: "Outputs circle", asset: "KES", adminId: A });
    const chamaId = chama.id as string;
    expect(chama).toMatchObject({ status: "active", createdBy: A, members: 1 });
    await call("chamas.members.add", { chamaId }, { memberId: B, role: "admin" }, user(A));
    await call("chamas.members.add", { chamaId }, { memberId: C }, user(A));
    await call("chamas.members.add", { chamaId }, { memberId: D }, user(A));
    expect((await call("chamas.invitations.create", { chamaId }, { memberId: E }, user(A))).status).toBe("invited");
    expect((await call("chamas.invitations.accept", { chamaId }, {}, user(E))).status).toBe("member");
    expect((await call("chamas.members.role", { chamaId, memberId: E }, { role: "admin" }, user(A))).role).toBe("admin");
    expect((await call("chamas.members.remove", { chamaId, memberId: D }, { reason: "moved away" }, user(A))).status).toBe("former");
    const rules = await call("chamas.rules", { chamaId }, { approvalsRequired: 1, maxPerWithdrawal: "5000.00" }, user(A));
    expect(rules.rules).toMatchObject({ approvalsRequired: 1, maxPerWithdrawal: "5000.00", maxPerDay: null });

    const deposit = await call("chamas.deposits.create", { chamaId }, { memberId: C, amount: "1000.00", reference: "mpesa-1" });
    expect(deposit).toMatchObject({ memberId: C, amount: "1000.00", contributed: "1000.00", balance: { available: "1000.00" } });
    expect((await call("chamas.members.get", { chamaId, memberId: C }, undefined, user(C))).share).toBe("1.0000");
    expect((await call("chamas.members.list", { chamaId }, undefined, user(C))).items.length).toBe(5);
    expect((await call("chamas.get", { chamaId }, undefined, user(C))).balance.posted).toBe("1000.00");

    // Approved, parked for review, then rejected.
    const w1 = await call("chamas.withdrawals.create", { chamaId }, { amount: "10.00", destination: BANK }, user(C));
    expect(w1).toMatchObject({ status: "pending_approval", approvals: [], destination: { type: "bank" } });
    expect((await call("chamas.withdrawals.approve", { chamaId, withdrawalId: w1.id }, { note: "agreed" }, user(B))).status).toBe("approved");
    expect((await call("chamas.withdrawals.park", { chamaId, withdrawalId: w1.id }, { note: "check the account" }, user(A))).status).toBe("manual_review");
    expect((await call("chamas.withdrawals.reject", { chamaId, withdrawalId: w1.id }, { note: "wrong account" }, user(B))).status).toBe("rejected");
    expect((await call("chamas.withdrawals.get", { chamaId, withdrawalId: w1.id }, undefined, user(C))).status).toBe("rejected");
    const reviews = await call("chamas.withdrawals.reviews.list", { chamaId, withdrawalId: w1.id }, undefined, user(C));
    expect(reviews.items.map((r: { decision: string; note?: string }) => [r.decision, r.note])).toEqual([
      ["approve", "agreed"],
      ["reject", "wrong account"],
    ]);

    // Approved, continued, completed by the platform.
    const w2 = await call("chamas.withdrawals.create", { chamaId }, { amount: "20.00", destination: { type: "ke_bank", bankCode: "68", account: "0123456789" } }, user(C));
    await call("chamas.withdrawals.approve", { chamaId, withdrawalId: w2.id }, {}, user(B));
    expect((await call("chamas.withdrawals.continue", { chamaId, withdrawalId: w2.id }, {}, user(C))).status).toBe("processing");
    expect((await call("chamas.withdrawals.complete", { chamaId, withdrawalId: w2.id })).status).toBe("completed");

    // Approved, continued, failed by the platform.
    const w3 = await call("chamas.withdrawals.create", { chamaId }, { amount: "30.00", destination: BANK }, user(C));
    await call("chamas.withdrawals.approve", { chamaId, withdrawalId: w3.id }, {}, user(B));
    await call("chamas.withdrawals.continue", { chamaId, withdrawalId: w3.id }, {}, user(C));
    expect(await call("chamas.withdrawals.fail", { chamaId, withdrawalId: w3.id }, { reason: "bank refused" })).toMatchObject({ status: "failed", reason: "bank refused" });

    // Cancelled by the requester.
    const w4 = await call("chamas.withdrawals.create", { chamaId }, { amount: "40.00", destination: BANK }, user(C));
    expect((await call("chamas.withdrawals.cancel", { chamaId, withdrawalId: w4.id }, { reason: "changed my mind" }, user(C))).status).toBe("cancelled");

    const all = await call("chamas.withdrawals.list", { chamaId }, { limit: 2 }, user(C));
    expect(all.items).toHaveLength(2);
    expect(all.nextCursor).toBeString();
    const rest = await call("chamas.withdrawals.list", { chamaId }, { limit: 50, cursor: all.nextCursor }, user(C));
    expect(rest.nextCursor).toBeNull();
    expect((await call("chamas.withdrawals.list", { chamaId }, { status: "completed" }, user(C))).items).toHaveLength(1);

    const audit = await call("chamas.audit", { chamaId }, { limit: 200 }, user(A));
    expect(audit.items.length).toBeGreaterThan(10);
    expect(audit.nextCursor).toBeNull();
    expect((await call("chamas.audit", { chamaId }, { limit: 1 })).nextCursor).toBeString();

    expect((await call("chamas.freeze", { chamaId }, {}, user(A))).status).toBe("frozen");
    expect((await call("chamas.unfreeze", { chamaId }, {}, user(A))).status).toBe("active");
    const empty = await call("chamas.create", {}, { name: "Empty circle", asset: "KES" }, user(A));
    expect((await call("chamas.close", { chamaId: empty.id }, {}, user(A))).status).toBe("closed");

    // The operator's view of a chama's live actor.
    expect((await call("admin.actors.get", { walletId: chamaId })).loaded).toBe(true);
  }, 30_000);
});

describe("finding your things, and wallets meeting chamas", () => {
  const run = crypto.randomUUID().slice(0, 8);
  const [A, M] = ["founder", "saver"].map((n) => `${n}-${run}`) as [string, string];

  test("the lists of wallets and chamas, a contribution from a wallet, and a withdrawal paid into one", async () => {
    const chama = await call("chamas.create", {}, { name: "Meeting circle", asset: "USD", adminId: A });
    const chamaId = chama.id as string;
    await call("chamas.members.add", { chamaId }, { memberId: M }, user(A));
    const walletId = (await call("wallets.create", {}, { ownerId: M, asset: "USD" })).id as string;
    await call("wallets.credits.create", { walletId }, { amount: "50.00" });

    const wallets = await call("wallets.list", {}, { limit: 1 }, user(M));
    expect(wallets.items.map((w: { id: string }) => w.id)).toEqual([walletId]);
    expect(wallets.nextCursor).toBeNull();
    expect((await call("wallets.list", {}, { ownerId: M })).items).toHaveLength(1);
    const chamas = await call("chamas.list", {}, { limit: 10 }, user(M));
    expect(chamas.items).toEqual([{ id: chamaId, name: "Meeting circle", asset: "USD", status: "active", createdAt: expect.any(String), member: { memberId: M, role: "member", status: "member" } }]);
    expect((await call("chamas.list", {}, { limit: 1 })).items[0].member).toBeUndefined();

    const contribution = await call("chamas.contributions.create", { chamaId }, { fromWalletId: walletId, amount: "20.00" }, user(M));
    expect(contribution).toMatchObject({ chamaId, fromWalletId: walletId, memberId: M, amount: "20.00", status: "pending" });
    expect(await t.node.saga.idle()).toBe(true);

    const w = await call("chamas.withdrawals.create", { chamaId }, { amount: "5.00", destination: { type: "wallet", walletId } }, user(M));
    expect(w.destination).toEqual({ type: "wallet", walletId });
    await call("chamas.withdrawals.approve", { chamaId, withdrawalId: w.id }, {}, user(A));
    expect((await call("chamas.withdrawals.continue", { chamaId, withdrawalId: w.id }, {}, user(M))).status).toBe("processing");
    expect(await t.node.saga.idle()).toBe(true);
    expect(await call("chamas.withdrawals.get", { chamaId, withdrawalId: w.id }, undefined, user(M))).toMatchObject({ status: "completed", destination: { type: "wallet", walletId } });
  }, 30_000);
});

describe("api keys", () => {
  test("issue, list, read, rotate and revoke", async () => {
    const created = await call("api-keys.create", {}, { name: "payroll", subject: "payroll-service", permissions: ["payments:write", "wallets:read"], rateLimitPerMinute: 600 });
    expect(created.key).toStartWith(created.prefix);
    const bare = await call("api-keys.create", {}, { name: "bare", subject: "bare-service", permissions: ["wallets:read"], ipAllowlist: ["127.0.0.1/32"], expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    expect(bare.rateLimitPerMinute).toBeNull();
    expect((await call("api-keys.list")).items.length).toBeGreaterThanOrEqual(2);
    expect((await call("api-keys.get", { keyId: created.id })).key).toBeUndefined();
    expect((await call("api-keys.rotate", { keyId: created.id }, { overlapSeconds: 60 })).key).not.toBe(created.key);
    expect((await call("api-keys.revoke", { keyId: bare.id })).revokedAt).toBeString();
  }, 30_000);
});

describe("webhooks out", () => {
  test("register, list, read, disable, enable, the delivery log and a redelivery", async () => {
    const app: As = { sub: "outputs-app", role: "service", perms: ["webhooks:write", "webhooks:read"] };
    // A name under .invalid never resolves: the delivery fails (dns) and nothing is sent anywhere.
    const endpoint = await call("webhooks.endpoints.create", {}, { url: "https://hooks.coffer.invalid/coffer", events: ["wallet.opened", "chama.*"] }, app);
    expect(endpoint).toMatchObject({ status: "enabled", owner: "service:outputs-app", disabledReason: null });
    expect(endpoint.secret).toStartWith("whsec_");
    const endpointId = endpoint.id as string;
    expect((await call("webhooks.endpoints.get", { endpointId }, undefined, app)).secret).toBeUndefined();
    const listed = await call("webhooks.endpoints.list", {}, { limit: 1 }, app);
    expect(listed.items.map((e: any) => e.id)).toEqual([endpointId]);
    expect(await call("webhooks.endpoints.list", {}, { limit: 50 })).toMatchObject({ nextCursor: null });

    await call("wallets.create", {}, { ownerId: "owner-hooked", asset: "USD" });
    expect(await t.node.webhookDelivery.idle()).toBe(true);
    const log = await call("webhooks.endpoints.deliveries.list", { endpointId }, { limit: 10 }, app);
    expect(log.items).toHaveLength(1);
    expect(log.items[0]).toMatchObject({ eventType: "wallet.opened", status: "pending", redeliveryOf: null, deliveredAt: null });
    expect(log.items[0].attempts[0]).toMatchObject({ attempt: 1, statusCode: null, error: "dns" });
    expect((await call("webhooks.endpoints.deliveries.list", { endpointId }, { status: "delivered" }, app)).items).toEqual([]);
    const again = await call("webhooks.deliveries.redeliver", { deliveryId: log.items[0].id }, {}, app);
    expect(again).toMatchObject({ redeliveryOf: log.items[0].id, eventId: log.items[0].eventId, status: "pending", attempts: [] });

    expect(await call("webhooks.endpoints.disable", { endpointId }, {}, app)).toMatchObject({ status: "disabled", disabledReason: "manual" });
    expect(await call("webhooks.endpoints.enable", { endpointId }, {}, app)).toMatchObject({ status: "enabled", disabledAt: null });
  }, 30_000);
});

describe("card deposits", () => {
  test("a deposit made, paid, read and partly refunded answers as its schemas say", async () => {
    const walletId = (await call("wallets.create", {}, { ownerId: "owner-cards", asset: "KES" })).id as string;
    const made = await call("wallets.deposits.create", { walletId }, { amount: "1500.50" });
    expect(made).toMatchObject({ walletId, asset: "KES", amount: "1500.50", status: "pending" });
    expect(made.stripe.clientSecret).toBeString();
    await t.stripe!.client.paymentIntents.confirm(made.stripe.paymentIntentId, { payment_method: "pm_card_visa" });
    await stripeSettled(t.node, t.stripe!.standin);
    const refund = await call("deposits.refunds.create", { depositId: made.id }, { amount: "0.50" });
    expect(refund).toMatchObject({ depositId: made.id, amount: "0.50", status: "succeeded", external: false });
    await stripeSettled(t.node, t.stripe!.standin);
    const read = await call("deposits.get", { depositId: made.id });
    expect(read).toMatchObject({ status: "partially_refunded", received: "1500.50", refunded: "0.50" });
    expect(read.refunds).toHaveLength(1);
  }, 30_000);
});

describe("admin", () => {
  test("the books, the node, and a live or absent actor", async () => {
    expect((await call("admin.verify")).ok).toBe(true);
    expect((await call("admin.cluster")).mode).toBe("single");
    expect(await call("admin.reconciliation")).toHaveProperty("ok");
    const walletId = (await call("wallets.create", {}, { ownerId: "owner-inspected", asset: "USD" })).id as string;
    expect((await call("admin.actors.get", { walletId })).loaded).toBe(true);
    const absent = await call("admin.actors.get", { walletId: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b" });
    expect(absent).toMatchObject({ loaded: false, state: null, context: null });
  }, 30_000);

  test("a node of a cluster describes every node", async () => {
    const prefix = `outputs${crypto.randomUUID().slice(0, 8)}`;
    const clustered = await startTestNode("outputscluster", { NATS_URL, NATS_SUBJECT_PREFIX: prefix });
    try {
      const res = await clustered.api("GET", "/admin/cluster");
      expect(res.status).toBe(200);
      conforms(operationNamed("admin.cluster")!.output, res.body, "admin.cluster (cluster)");
      expect(res.body.mode).toBe("cluster");
    } finally {
      await clustered.stop();
      await deleteClusterState(prefix);
    }
  }, 30_000);
});

describe("monitoring and the admin API", () => {
  test("alerts and their review, the rules, held withdrawals released and rejected, transactions, stats and health", async () => {
    const before = (await call("admin.monitoring.rules.get")).rules;
    const rules = { ...before, newDestination: { ...before.newDestination, outcome: "hold" } };
    await call("admin.monitoring.rules.update", {}, { rules, note: "hold new destinations" });
    const walletId = (await call("wallets.create", {}, { ownerId: "owner-monitoring", asset: "USD" })).id as string;
    await call("wallets.credits.create", { walletId }, { amount: "50.00" });
    const held = (await call("wallets.withdrawals.create", { walletId }, { amount: "1.00", destination: BANK })).id as string;
    const rejected = (await call("wallets.withdrawals.create", { walletId }, { amount: "1.00", destination: CRYPTO_USD_BANK })).id as string;
    expect(await t.node.monitoring.settle()).toBe(true);
    expect((await call("admin.withdrawals.release", { withdrawalId: held }, { note: "known account" })).status).toBe("requested");
    expect((await call("admin.withdrawals.reject", { withdrawalId: rejected }, {})).status).toBe("rejected");
    await call("admin.monitoring.rules.update", {}, { rules: before });

    const alerts = await call("admin.alerts.list", {}, { limit: 10 });
    const alertId = alerts.items[0].id as string;
    expect((await call("admin.alerts.get", { alertId })).held.length).toBeGreaterThan(0);
    expect((await call("admin.alerts.review", { alertId }, { status: "investigating", note: "looking" })).status).toBe("investigating");

    const page = await call("admin.transactions.list", {}, { ownerId: "owner-monitoring", limit: 2 });
    expect(page.nextCursor).toBeString();
    await call("admin.transactions.list", {}, { ownerId: "owner-monitoring", limit: 50, cursor: page.nextCursor });
    const detail = await call("admin.transactions.get", { transactionId: held });
    expect(detail.history.length).toBeGreaterThan(0);
    for (const by of ["daily", "network", "status"]) expect((await call(`admin.stats.${by}`)).items.length).toBeGreaterThan(0);
    expect((await call("admin.health")).components.length).toBeGreaterThan(0);
  });
});

describe("chain payouts, for operators", () => {
  test("the networks, pause and resume; payouts and their retry, replace and cancel; dead letters, re-drive and delete", async () => {
    // This node has no NETWORKS_FILE: one network is added to its parsed networks (no worker pays
    // it), and payout rows are put straight into chain_payouts for withdrawals to ethereum.
    t.node.networks["outputs-chain"] ??= parseNetworks({ "outputs-chain": { kind: "evm", chainId: 1, rpcUrls: ["http://127.0.0.1:9/"], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 1 } })["outputs-chain"]!;
    expect((await call("admin.networks.list")).items.map((n: { name: string }) => n.name)).toEqual(["outputs-chain"]);
    expect((await call("admin.networks.pause", { network: "outputs-chain" }, { reason: "maintenance" })).paused).toBe(true);
    expect((await call("admin.networks.resume", { network: "outputs-chain" }, {})).paused).toBe(false);

    const walletId = (await call("wallets.create", {}, { ownerId: "owner-chain", asset: "ETH" })).id as string;
    await call("wallets.credits.create", { walletId }, { amount: "1" });
    const payout = async (status: string, signed: boolean) => {
      const id = (await call("wallets.withdrawals.create", { walletId }, { amount: "0.1", destination: CRYPTO })).id as string;
      await t.node.db`insert into chain_payouts (withdrawal_id, wallet_id, network, from_address, to_address, amount, status, asset, parked_from, raw_tx, nonce, last_error)
        values (${id}, ${walletId}, 'ethereum', ${CRYPTO.address}, ${CRYPTO.address}, '100000000000000000', ${status}, 'ETH',
          ${status === "parked" ? "broadcast" : null}, ${signed ? "0x02f8" : null}, ${signed ? "3" : null}, ${status === "parked" ? "gas estimate over the cap" : null})`;
      return id;
    };
    const parked = await payout("parked", true);
    expect((await call("admin.payouts.list", {}, { limit: 10 })).items.length).toBeGreaterThan(0);
    expect((await call("admin.payouts.retry", { withdrawalId: parked }, { note: "try again" })).status).toBe("broadcast");
    expect((await call("admin.payouts.replace", { withdrawalId: parked }, {})).operatorAction).toBe("replace");
    expect((await call("admin.payouts.cancel", { withdrawalId: await payout("claimed", false) }, {})).operatorAction).toBe("cancel");

    const letter = async () => {
      const id = crypto.randomUUID();
      await t.node.db`insert into chain_dlq (id, withdrawal_id, network, stage, reason, attempts) values (${id}, ${await payout("parked", true)}, 'ethereum', 'broadcast', 'rpc unavailable', 8)`;
      return id;
    };
    const [redriven, deleted] = [await letter(), await letter()];
    expect((await call("admin.dlq.list", {}, { limit: 10 })).items.length).toBe(2);
    expect((await call("admin.dlq.redrive", { entryId: redriven }, {})).status).toBe("redriven");
    expect((await call("admin.dlq.delete", { entryId: deleted }, { note: "paid by hand" })).status).toBe("deleted");
  });
});

test("failures answer with the Problem schema", async () => {
  const res = await t.api("POST", "/v1/wallets", { ownerId: "x", asset: "XXX" });
  expect(res.status).toBe(400);
  conforms(Problem, res.body, "a validation failure");
  expect(res.body.errors?.length).toBeGreaterThan(0);
  conforms(Problem, (await t.api("GET", "/v1/wallets/0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b")).body, "not found");
});

test("every operation of the table was called above", () => {
  const missing = OPERATIONS.map((op: Operation) => op.name).filter((name) => !covered.has(name));
  expect(missing).toEqual([]);
});
