import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import postgres from "postgres";
import { retryPayout } from "../../src/integrations/chain/operator";
import { PERMISSIONS } from "../../lib/principal";
import type { As } from "../support/auth";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";
import { testDir } from "../support/temp";

/**
 * The chain payout pipeline's operator routes (src/api/operations/chain.ts,
 * src/integrations/chain/operator.ts) on a real node. Payout rows are put straight into
 * chain_payouts and chain_dlq for withdrawals requested through the API (so their keys hold). The
 * node's NETWORKS_FILE configures `linea` (EVM) and `solana` with dead RPCs: the withdrawals go to
 * `ethereum`, which it does not pay, so no worker touches a row put here (the EVM worker only looks
 * at withdrawals to the networks it pays), and the rows counted on `linea` by the networks view are
 * those the test put there.
 */
const ADMIN: As = { sub: "ops-1", role: "admin" };
const AUDITOR: As = { sub: "audit-1", role: "auditor" };
const USER: As = { sub: "user-1", role: "user" };
const EVERY_PERMISSION: As = { sub: "svc-all", role: "service", perms: [...PERMISSIONS] };
const ACTOR = "admin#ops-1";

/** A public chain address: shown masked (first six, last four), never whole. */
const TO = "0x52908400098527886E0F7030069857D2E4169EE7";
const HOT = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
/** Signed bytes: never in an answer. */
const RAW = "0x02f8b1018203e8843b9aca00850ba43b7400825208945290840009852788";
const ETH = 10n ** 18n;

let t: TestNode;
let wallet: string;
/** A client of the file's own, as the worker would be: its own connection, its own transactions. */
let worker: postgres.Sql;

beforeAll(async () => {
  const file = join(testDir("operator-routes"), "networks.json");
  await Bun.write(
    file,
    JSON.stringify({
      linea: { kind: "evm", chainId: 59144, rpcUrls: ["http://127.0.0.1:9/"], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 2, runway: { feeMarginWei: "10000000000000000" } },
      solana: { kind: "solana", rpcUrls: ["http://127.0.0.1:9/"], assets: { SOL: { native: true } } },
    }),
  );
  t = await startTestNode("operator-routes", { COFFER_TEST_STRIPE: "off", NETWORKS_FILE: file });
  wallet = await fundedWallet(t.api, "ETH", "1000", "chain-owner");
  worker = postgres(t.db.url, { max: 2, onnotice: () => {} });
}, 60_000);
afterAll(async () => {
  await worker?.end({ timeout: 5 });
  await t?.stop();
});

interface Put {
  status: string;
  network?: string;
  asset?: string;
  amount?: bigint;
  parkedFrom?: string | null;
  /** A signed transaction is stored (default: for the statuses that have one). */
  signed?: boolean;
  operatorAction?: string | null;
  /** Created this many seconds ago. */
  ageSeconds?: number;
}

/** A withdrawal of `wallet` (to `ethereum`: no worker pays it) and its chain payout row as given. */
async function payout(p: Put): Promise<string> {
  const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.001", destination: { type: "crypto", network: "ethereum", address: TO } });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const signed = p.signed ?? ["signed", "broadcast", "confirmed", "completed", "cancelling", "cancelled"].includes(p.status);
  await t.node.db`insert into chain_payouts (withdrawal_id, wallet_id, network, from_address, to_address, amount, status, asset, parked_from, raw_tx, nonce,
      last_error, operator_action, stage_failures, next_attempt_at, created_at, updated_at)
    values (${id}, ${wallet}, ${p.network ?? "ethereum"}, ${HOT}, ${TO}, ${(p.amount ?? ETH / 1000n).toString()}, ${p.status}, ${p.asset ?? "ETH"},
      ${p.parkedFrom ?? null}, ${signed ? RAW : null}, ${signed ? "41" : null}, ${p.status === "parked" ? "gas estimate over the cap" : null},
      ${p.operatorAction ?? null}, ${p.status === "parked" ? 8 : 0}, now() + interval '1 hour',
      now() - make_interval(secs => ${p.ageSeconds ?? 0}), now() - make_interval(secs => ${p.ageSeconds ?? 0}))`;
  return id;
}

async function deadLetter(withdrawalId: string, opts: { status?: string; stage?: string; network?: string } = {}): Promise<string> {
  const id = crypto.randomUUID();
  await t.node.db`insert into chain_dlq (id, withdrawal_id, network, stage, reason, attempts, status)
    values (${id}, ${withdrawalId}, ${opts.network ?? "ethereum"}, ${opts.stage ?? "broadcast"}, 'rpc unavailable', 8, ${opts.status ?? "open"})`;
  return id;
}

async function row(id: string) {
  const [r] = await t.node.db`select status, parked_from, last_error, stage_failures, operator_action, operator_action_by,
      next_attempt_at <= now() + interval '1 second' as due from chain_payouts where withdrawal_id = ${id}`;
  return r!;
}

async function audits(subject: string) {
  return t.node.db`select actor, action, detail from chain_operator_audit where subject = ${subject} order by id`;
}

const act = (verb: string, id: string, as: As = ADMIN, opts: { key?: string; note?: string } = {}) =>
  t.api("POST", `/admin/payouts/${id}/${verb}`, opts.note ? { note: opts.note } : {}, { as, ...(opts.key ? { key: opts.key } : {}) });

/** Nothing of what a payout row keeps for the worker alone leaks: the signed bytes, the whole destination. */
function leaksNothing(res: ApiResponse): void {
  const text = JSON.stringify(res.body);
  expect(text).not.toContain(RAW);
  expect(text.toLowerCase()).not.toContain(TO.toLowerCase());
}

describe("GET /admin/networks", () => {
  test("each configured network: pause, hot wallet, pending outflow and runway from the rows, queue depths, oldest pending age, last block", async () => {
    await t.node.db`insert into hot_wallets (id, network, address, sealed_key) values (${crypto.randomUUID()}, 'linea', ${HOT}, '{}'::jsonb)`;
    // Pending (native ETH): 0.1 + 0.2 + 0.3 + 0.4 + 0.05 = 1.05; the oldest of them waited 90 s.
    await payout({ status: "claimed", network: "linea", amount: ETH / 10n, ageSeconds: 90 });
    await payout({ status: "signed", network: "linea", amount: (2n * ETH) / 10n });
    await payout({ status: "broadcast", network: "linea", amount: (3n * ETH) / 10n });
    await payout({ status: "confirmed", network: "linea", amount: (4n * ETH) / 10n });
    await payout({ status: "cancelling", network: "linea", amount: ETH / 20n });
    // Not pending: parked (waits for an operator), finished ones, and a token (not the native asset).
    const parked = await payout({ status: "parked", network: "linea", amount: ETH, parkedFrom: "broadcast", ageSeconds: 3600 });
    await payout({ status: "completed", network: "linea", amount: 5n * ETH });
    await payout({ status: "failed", network: "linea", amount: 5n * ETH });
    await payout({ status: "broadcast", network: "linea", asset: "USDC", amount: 7_000_000n });
    await deadLetter(parked, { network: "linea" });
    await t.node.db`insert into chain_networks (network, hot_balance, hot_balance_at, last_block, last_block_at, chain_nonce, drift)
      values ('linea', ${(2n * ETH).toString()}, now() - interval '5 seconds', 1234567, now() - interval '3 seconds', 40, null)`;

    const res = await t.api("GET", "/admin/networks");
    expect(res.status).toBe(200);
    expect(res.body.items.map((n: { name: string }) => n.name)).toEqual(["linea", "solana"]);
    const [linea, solana] = res.body.items;
    expect(linea).toMatchObject({
      name: "linea",
      kind: "evm",
      asset: "ETH",
      paused: false,
      pausedBy: null,
      hotWallet: HOT,
      balance: "2.000000000000000000",
      pendingOutflow: "1.050000000000000000",
      feeMargin: "0.010000000000000000",
      // 2 − 1.05 − 0.01
      runway: "0.940000000000000000",
      queue: { claimed: 1, signed: 1, broadcast: 2, confirmed: 1, cancelling: 1, parked: 1 },
      deadLetters: 1,
      lastBlock: 1234567,
      chainNonce: 40,
      drift: null,
    });
    expect(linea.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(90);
    expect(linea.oldestPendingAgeSeconds).toBeLessThan(150);
    expect(Date.now() - Date.parse(linea.balanceAt)).toBeLessThan(60_000);
    expect(Date.now() - Date.parse(linea.lastBlockAt)).toBeLessThan(60_000);
    // Nothing seen yet on Solana: no balance, so no runway; its margin in lamports, shown in SOL.
    expect(solana).toMatchObject({ name: "solana", kind: "solana", asset: "SOL", hotWallet: null, balance: null, balanceAt: null, runway: null, pendingOutflow: "0.000000000", feeMargin: "0.010000000", oldestPendingAgeSeconds: null, lastBlock: null });

    // Short: a balance of 1 ETH leaves a runway of 1 − 1.05 − 0.01, below zero.
    await t.node.db`update chain_networks set hot_balance = ${ETH.toString()} where network = 'linea'`;
    const short = (await t.api("GET", "/admin/networks")).body.items[0];
    expect(short.runway).toBe("-0.060000000000000000");
  });

  test("a node without NETWORKS_FILE lists none, and pausing any network there is 404", async () => {
    const bare = await startTestNode("operator-routes-bare", { COFFER_TEST_STRIPE: "off" });
    try {
      expect((await bare.api("GET", "/admin/networks")).body).toEqual({ items: [] });
      expectProblem(await bare.api("POST", "/admin/networks/linea/pause", { reason: "maintenance" }), 404, "NOT_FOUND");
      expect((await bare.api("GET", "/admin/payouts")).body).toEqual({ items: [], nextCursor: null });
      expect((await bare.api("GET", "/admin/dlq")).body).toEqual({ items: [], nextCursor: null });
    } finally {
      await bare.stop();
    }
  }, 30_000);
});

describe("pause and resume", () => {
  test("pause and resume are idempotent, answer the network as it is, and are audited; a network not configured is 404", async () => {
    expectProblem(await t.api("POST", "/admin/networks/ethereum/pause", { reason: "maintenance" }), 404, "NOT_FOUND");
    expectProblem(await t.api("POST", "/admin/networks/ethereum/resume", {}), 404, "NOT_FOUND");
    expectProblem(await t.api("POST", "/admin/networks/solana/pause", {}), 400, "VALIDATION_FAILED");

    const paused = await t.api("POST", "/admin/networks/solana/pause", { reason: "RPC provider incident" }, { as: ADMIN });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ name: "solana", paused: true, pausedBy: "operator", pausedReason: "RPC provider incident" });
    // Again, with another reason: nothing changes (the first pause stands) and it answers as it is.
    const again = await t.api("POST", "/admin/networks/solana/pause", { reason: "another reason" }, { as: ADMIN });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(paused.body);
    expect((await t.api("GET", "/admin/networks")).body.items[1]).toEqual(paused.body);

    const resumed = await t.api("POST", "/admin/networks/solana/resume", { note: "provider recovered" }, { as: ADMIN });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ name: "solana", paused: false, pausedBy: null, pausedReason: null, pausedAt: null });
    const resumedAgain = await t.api("POST", "/admin/networks/solana/resume", {}, { as: ADMIN });
    expect(resumedAgain.status).toBe(200);
    expect(resumedAgain.body).toEqual(resumed.body);

    const trail = await audits("solana");
    expect(trail.map((a) => [a.actor, a.action, a.detail.changed])).toEqual([
      [ACTOR, "network.pause", true],
      [ACTOR, "network.pause", false],
      [ACTOR, "network.resume", true],
      [ACTOR, "network.resume", false],
    ]);
    expect(trail[0]!.detail).toMatchObject({ reason: "RPC provider incident", before: { paused: false, pausedBy: null } });
  });

  test("an operator's pause takes over one the runway check made, keeping its time", async () => {
    await t.node.db`insert into chain_networks (network, paused, paused_by, paused_reason, paused_at) values ('linea', true, 'runway', 'hot wallet short', now() - interval '1 minute')
      on conflict (network) do update set paused = true, paused_by = 'runway', paused_reason = 'hot wallet short', paused_at = now() - interval '1 minute'`;
    const before = (await t.api("GET", "/admin/networks")).body.items[0];
    expect(before).toMatchObject({ paused: true, pausedBy: "runway", pausedReason: "hot wallet short" });
    const res = await t.api("POST", "/admin/networks/linea/pause", { reason: "investigating the hot wallet" });
    expect(res.body).toMatchObject({ paused: true, pausedBy: "operator", pausedReason: "investigating the hot wallet", pausedAt: before.pausedAt });
    expect((await t.api("POST", "/admin/networks/linea/resume", {})).body).toMatchObject({ paused: false, pausedBy: null });
  });

  test("the same key replays the first answer and changes nothing more; another request under it is 422", async () => {
    const key = `pause-${crypto.randomUUID()}`;
    const first = await t.api("POST", "/admin/networks/solana/pause", { reason: "replayed" }, { key });
    const count = (await audits("solana")).length;
    const replay = await t.api("POST", "/admin/networks/solana/pause", { reason: "replayed" }, { key });
    expect({ status: replay.status, body: replay.body }).toEqual({ status: first.status, body: first.body });
    expect((await audits("solana")).length).toBe(count);
    expectProblem(await t.api("POST", "/admin/networks/solana/pause", { reason: "something else" }, { key }), 422, "IDEMPOTENCY_CONFLICT");
    await t.api("POST", "/admin/networks/solana/resume", {});
  });
});

describe("GET /admin/payouts", () => {
  test("pages of 4 list each of 14 payouts once, newest first, even when several share a time; filters by status and network", async () => {
    const network = "page-net";
    const ids: string[] = [];
    for (let i = 0; i < 14; i++) ids.push(await payout({ status: i % 2 ? "broadcast" : "parked", parkedFrom: "signed", network }));
    // Five of them made at the very same instant: the id breaks the tie.
    await t.node.db`update chain_payouts set created_at = (select max(created_at) from chain_payouts where network = ${network}) where withdrawal_id in ${t.node.db(ids.slice(5, 10))}`;
    const expected = (await t.node.db`select withdrawal_id from chain_payouts where network = ${network} order by created_at desc, withdrawal_id desc`).map((r) => r.withdrawal_id as string);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: ApiResponse = await t.api("GET", `/admin/payouts?network=${network}&limit=4${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(4);
      leaksNothing(res);
      seen.push(...res.body.items.map((p: { withdrawalId: string }) => p.withdrawalId));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(expected);
    expect(new Set(seen).size).toBe(14);

    const parked = (await t.api("GET", `/admin/payouts?network=${network}&status=parked&limit=50`)).body;
    expect(parked.items.length).toBe(7);
    expect(parked.items.every((p: { status: string }) => p.status === "parked")).toBe(true);
    expect(parked.nextCursor).toBeNull();
    expectProblem(await t.api("GET", `/admin/payouts?cursor=${crypto.randomUUID()}`), 400, "VALIDATION_FAILED");
    expectProblem(await t.api("GET", "/admin/payouts?status=stuck"), 400, "VALIDATION_FAILED");
  });

  test("an item: amounts as decimals in its asset, the destination masked, no signed bytes", async () => {
    const id = await payout({ status: "parked", parkedFrom: "broadcast", signed: true, amount: 1_234_500_000_000_000_000n });
    const res = await t.api("GET", "/admin/payouts?status=parked&limit=1");
    leaksNothing(res);
    expect(res.body.items[0]).toMatchObject({
      withdrawalId: id,
      walletId: wallet,
      network: "ethereum",
      asset: "ETH",
      amount: "1.234500000000000000",
      destination: { type: "crypto", network: "ethereum", address: "0x5290…9EE7" },
      status: "parked",
      parkedFrom: "broadcast",
      lastError: "gas estimate over the cap",
      nonce: 41,
      attempts: 0,
      replacements: 0,
      operatorAction: null,
      blockNumber: null,
    });
  });
});

describe("retry", () => {
  test("a parked payout goes back to where it was parked from: its error and failures cleared, due now, its open dead letters re-driven, audited", async () => {
    const id = await payout({ status: "parked", parkedFrom: "broadcast" });
    const letter = await deadLetter(id);
    const settled = await deadLetter(id, { status: "deleted" });
    const res = await act("retry", id, ADMIN, { note: "gas spike is over" });
    expect(res.status).toBe(200);
    leaksNothing(res);
    expect(res.body).toMatchObject({ withdrawalId: id, status: "broadcast", parkedFrom: null, lastError: null });
    expect(await row(id)).toMatchObject({ status: "broadcast", parked_from: null, last_error: null, stage_failures: 0, due: true });
    const letters = await t.node.db`select id, status, settled_by from chain_dlq where withdrawal_id = ${id} order by id`;
    expect(Object.fromEntries(letters.map((l) => [l.id, [l.status, l.settled_by]]))).toEqual({ [letter]: ["redriven", ACTOR], [settled]: ["deleted", null] });
    const [entry] = await audits(id);
    expect(entry).toMatchObject({ actor: ACTOR, action: "payout.retry", detail: { from: "parked", parkedFrom: "broadcast", to: "broadcast", deadLettersRedriven: 1, note: "gas spike is over" } });
    // Once: it is no longer parked.
    expectProblem(await act("retry", id), 409, "INVALID_TRANSITION");
    expect((await audits(id)).length).toBe(1);
  });

  test("parked without saying from where: to signed when signed bytes are stored (never a second nonce), to claimed when not", async () => {
    const signed = await payout({ status: "parked", parkedFrom: null, signed: true });
    const unsigned = await payout({ status: "parked", parkedFrom: null, signed: false });
    expect((await act("retry", signed)).body.status).toBe("signed");
    expect((await act("retry", unsigned)).body.status).toBe("claimed");
  });

  test("anything not parked is 409 INVALID_TRANSITION naming its status, and changes nothing", async () => {
    for (const status of ["claimed", "signed", "broadcast", "confirmed", "completed", "failed", "dropped", "cancelling", "cancelled"]) {
      const id = await payout({ status });
      const res = await act("retry", id);
      expectProblem(res, 409, "INVALID_TRANSITION");
      expect(res.body.detail).toContain(status);
      expect((await row(id)).status).toBe(status);
      expect((await audits(id)).length).toBe(0);
    }
  });

  test("an unknown payout (or a withdrawal not paid on chain) is 404", async () => {
    for (const verb of ["retry", "replace", "cancel"]) {
      expectProblem(await act(verb, crypto.randomUUID()), 404, "NOT_FOUND");
      const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.001", destination: { type: "crypto", network: "ethereum", address: TO } });
      expectProblem(await act(verb, res.body.id), 404, "NOT_FOUND");
    }
  });
});

describe("replace", () => {
  test("a signed or broadcast payout gets the worker's replace request; a parked one with signed bytes goes back where it was", async () => {
    for (const status of ["signed", "broadcast"]) {
      const id = await payout({ status });
      const res = await act("replace", id);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status, operatorAction: "replace", operatorActionBy: ACTOR });
      expect((await audits(id)).map((a) => a.action)).toEqual(["payout.replace"]);
    }
    const parked = await payout({ status: "parked", parkedFrom: "broadcast", signed: true });
    const letter = await deadLetter(parked);
    expect((await act("replace", parked)).body).toMatchObject({ status: "broadcast", parkedFrom: null, operatorAction: "replace" });
    expect((await row(parked)).stage_failures).toBe(0);
    expect((await t.node.db`select status from chain_dlq where id = ${letter}`)[0]!.status).toBe("redriven");
  });

  test("nothing signed, mined, cancelling or over, or a cancellation asked for: 409, nothing changed", async () => {
    const cases: Put[] = [
      { status: "claimed" },
      { status: "confirmed" },
      { status: "completed" },
      { status: "failed" },
      { status: "dropped" },
      { status: "cancelling" },
      { status: "cancelled" },
      { status: "parked", parkedFrom: "claimed", signed: false },
      { status: "parked", parkedFrom: "confirmed", signed: true },
      { status: "broadcast", operatorAction: "cancel" },
    ];
    for (const c of cases) {
      const id = await payout(c);
      const before = await row(id);
      expectProblem(await act("replace", id), 409, "INVALID_TRANSITION");
      expect(await row(id)).toEqual(before);
      expect((await audits(id)).length).toBe(0);
    }
  });
});

describe("cancel", () => {
  test("before signing (claimed, or parked without signed bytes): the cancel request; the worker fails it and releases the hold", async () => {
    const claimed = await payout({ status: "claimed" });
    expect((await act("cancel", claimed)).body).toMatchObject({ status: "claimed", operatorAction: "cancel", operatorActionBy: ACTOR });
    const parked = await payout({ status: "parked", parkedFrom: "claimed", signed: false });
    expect((await act("cancel", parked)).body).toMatchObject({ status: "claimed", parkedFrom: null, operatorAction: "cancel" });
    const [entry] = await audits(parked);
    expect(entry).toMatchObject({ action: "payout.cancel", detail: { from: "parked", to: "claimed", signed: false } });
  });

  test("once signed (signed, broadcast, or parked with signed bytes): the cancel request, which a pending replace gives way to", async () => {
    for (const status of ["signed", "broadcast"]) {
      const id = await payout({ status, operatorAction: status === "broadcast" ? "replace" : null });
      expect((await act("cancel", id)).body).toMatchObject({ status, operatorAction: "cancel" });
    }
    const parked = await payout({ status: "parked", parkedFrom: "signed", signed: true });
    expect((await act("cancel", parked)).body).toMatchObject({ status: "signed", operatorAction: "cancel" });
    expect((await audits(parked))[0]!.detail).toMatchObject({ from: "parked", to: "signed", signed: true });
  });

  test("over (completed, failed, dropped, cancelled), mined (confirmed) or already cancelling: 409, nothing changed", async () => {
    for (const c of [{ status: "completed" }, { status: "failed" }, { status: "dropped" }, { status: "cancelled" }, { status: "cancelling" }, { status: "confirmed" }, { status: "parked", parkedFrom: "cancelling" }] as Put[]) {
      const id = await payout(c);
      const before = await row(id);
      const res = await act("cancel", id);
      expectProblem(res, 409, "INVALID_TRANSITION");
      expect(res.body.detail).toContain(c.status);
      expect(await row(id)).toEqual(before);
      expect((await audits(id)).length).toBe(0);
    }
  });
});

describe("dead letters", () => {
  test("listed newest first by network, stage and status (open by default), a page at a time", async () => {
    const network = "dlq-net";
    const id = await payout({ status: "parked", parkedFrom: "broadcast", network });
    const letters: string[] = [];
    for (let i = 0; i < 11; i++) letters.push(await deadLetter(id, { network, stage: i % 2 ? "track" : "broadcast" }));
    const deleted = await deadLetter(id, { network, status: "deleted" });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: ApiResponse = await t.api("GET", `/admin/dlq?network=${network}&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((d: { id: string }) => d.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    const expected = (await t.node.db`select id from chain_dlq where network = ${network} and status = 'open' order by created_at desc, id desc`).map((r) => r.id as string);
    expect(seen).toEqual(expected);
    expect(new Set(seen)).toEqual(new Set(letters));
    const tracks = (await t.api("GET", `/admin/dlq?network=${network}&stage=track&limit=50`)).body.items;
    expect(tracks.length).toBe(5);
    expect(tracks[0]).toMatchObject({ withdrawalId: id, network, stage: "track", reason: "rpc unavailable", attempts: 8, status: "open", payoutStatus: "parked", settledBy: null, settledAt: null });
    expect((await t.api("GET", `/admin/dlq?network=${network}&status=deleted`)).body.items.map((d: { id: string }) => d.id)).toEqual([deleted]);
  });

  test("re-drive: the open entry is settled and its payout goes back to where it was parked from; then 409", async () => {
    const id = await payout({ status: "parked", parkedFrom: "signed", signed: true });
    const letter = await deadLetter(id);
    const other = await deadLetter(id, { stage: "track" });
    const res = await t.api("POST", `/admin/dlq/${letter}/redrive`, { note: "RPC is back" }, { as: ADMIN });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: letter, status: "redriven", settledBy: ACTOR, payoutStatus: "signed" });
    expect((await row(id)).status).toBe("signed");
    expect((await t.node.db`select status from chain_dlq where id = ${other}`)[0]!.status).toBe("redriven");
    expect((await audits(letter)).map((a) => [a.actor, a.action, a.detail.payoutTo])).toEqual([[ACTOR, "dlq.redrive", "signed"]]);
    expectProblem(await t.api("POST", `/admin/dlq/${letter}/redrive`, {}), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/admin/dlq/${letter}/delete`, {}), 409, "INVALID_TRANSITION");
  });

  test("re-drive of an entry whose payout is no longer parked is 409 (delete it instead)", async () => {
    const id = await payout({ status: "broadcast" });
    const letter = await deadLetter(id);
    const res = await t.api("POST", `/admin/dlq/${letter}/redrive`, {});
    expectProblem(res, 409, "INVALID_TRANSITION");
    expect(res.body.detail).toContain("broadcast");
    expect((await t.api("POST", `/admin/dlq/${letter}/delete`, {})).body).toMatchObject({ status: "deleted", payoutStatus: "broadcast" });
  });

  test("delete: the entry is settled for good and its payout stays parked; then 409; an unknown entry is 404", async () => {
    const id = await payout({ status: "parked", parkedFrom: "broadcast" });
    const letter = await deadLetter(id);
    const res = await t.api("POST", `/admin/dlq/${letter}/delete`, { note: "paid by hand" }, { as: ADMIN });
    expect(res.body).toMatchObject({ id: letter, status: "deleted", settledBy: ACTOR, payoutStatus: "parked" });
    expect((await row(id)).status).toBe("parked");
    expect((await audits(letter)).map((a) => a.action)).toEqual(["dlq.delete"]);
    expectProblem(await t.api("POST", `/admin/dlq/${letter}/delete`, {}), 409, "INVALID_TRANSITION");
    expectProblem(await t.api("POST", `/admin/dlq/${crypto.randomUUID()}/delete`, {}), 404, "NOT_FOUND");
    expectProblem(await t.api("POST", `/admin/dlq/${crypto.randomUUID()}/redrive`, {}), 404, "NOT_FOUND");
  });
});

describe("who may", () => {
  test("an auditor reads the networks, the payouts and the dead letters, and may act on none (403, nothing written)", async () => {
    const id = await payout({ status: "parked", parkedFrom: "broadcast" });
    const letter = await deadLetter(id);
    for (const path of ["/admin/networks", "/admin/payouts", "/admin/dlq"]) expect((await t.api("GET", path, undefined, { as: AUDITOR })).status).toBe(200);
    const before = await row(id);
    for (const [path, body] of [
      [`/admin/payouts/${id}/retry`, {}],
      [`/admin/payouts/${id}/replace`, {}],
      [`/admin/payouts/${id}/cancel`, {}],
      [`/admin/dlq/${letter}/redrive`, {}],
      [`/admin/dlq/${letter}/delete`, {}],
      ["/admin/networks/linea/pause", { reason: "auditor" }],
      ["/admin/networks/linea/resume", {}],
    ] as const) {
      expectProblem(await t.api("POST", path, body, { as: AUDITOR }), 403, "FORBIDDEN");
    }
    expect(await row(id)).toEqual(before);
    expect((await t.node.db`select status from chain_dlq where id = ${letter}`)[0]!.status).toBe("open");
    expect((await t.node.db`select count(*)::int as n from chain_operator_audit where actor like 'auditor#%'`)[0]!.n).toBe(0);
  });

  test("a user, and a service with every permission, may not even read (403)", async () => {
    for (const as of [USER, EVERY_PERMISSION]) {
      for (const path of ["/admin/networks", "/admin/payouts", "/admin/dlq"]) expectProblem(await t.api("GET", path, undefined, { as }), 403, "FORBIDDEN");
      expectProblem(await t.api("POST", "/admin/networks/linea/pause", { reason: "x" }, { as }), 403, "FORBIDDEN");
    }
  });
});

describe("an operator and the worker at the same moment", () => {
  /** Resolves once some backend of this database waits for a row lock. */
  async function someoneWaits(): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const [w] = await t.node.db`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
      if (w!.n > 0) return;
      await Bun.sleep(10);
    }
    throw new Error("nobody waited for the lock");
  }

  test("the worker moves the payout first: the retry waits for it, then is refused (409); the worker's change stands", async () => {
    const id = await payout({ status: "parked", parkedFrom: "broadcast" });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let updated!: () => void;
    const hasUpdated = new Promise<void>((r) => (updated = r));
    const moved = worker.begin(async (sql) => {
      const done = await sql`update chain_payouts set status = 'failed', last_error = 'dropped by the worker', updated_at = now() where withdrawal_id = ${id} and status = 'parked'`;
      updated();
      await held;
      return done.count;
    });
    try {
      await hasUpdated;
      const retry = act("retry", id);
      await someoneWaits();
      release();
      expect(await moved).toBe(1);
      const res = await retry;
      expectProblem(res, 409, "INVALID_TRANSITION");
      expect(res.body.detail).toContain("failed");
      expect(await row(id)).toMatchObject({ status: "failed", last_error: "dropped by the worker" });
    } finally {
      release();
    }
    expect((await audits(id)).length).toBe(0);
  });

  test("the retry locks the payout first: the worker's conditional update waits for it, then changes nothing", async () => {
    const id = await payout({ status: "parked", parkedFrom: "broadcast" });
    let moved: Promise<number> | undefined;
    await t.node.db.begin(async (sql) => {
      await retryPayout(sql, id, ACTOR, undefined);
      moved = worker`update chain_payouts set status = 'failed', updated_at = now() where withdrawal_id = ${id} and status = 'parked'`.then((r) => r.count);
      await someoneWaits();
    });
    expect(await moved!).toBe(0);
    expect(await row(id)).toMatchObject({ status: "broadcast", parked_from: null });
    expect((await audits(id)).map((a) => a.action)).toEqual(["payout.retry"]);
  });

  test("raced 20 times: exactly one of the retry and the worker's update wins, and the row is what the winner made it", async () => {
    for (let i = 0; i < 20; i++) {
      const id = await payout({ status: "parked", parkedFrom: "broadcast" });
      const [res, count] = await Promise.all([
        act("retry", id),
        Bun.sleep(i % 4).then(() => worker`update chain_payouts set status = 'failed', updated_at = now() where withdrawal_id = ${id} and status = 'parked'`.then((r) => r.count)),
      ]);
      const after = await row(id);
      if (res.status === 200) {
        expect({ count, status: after.status, audits: (await audits(id)).length }).toEqual({ count: 0, status: "broadcast", audits: 1 });
      } else {
        expectProblem(res, 409, "INVALID_TRANSITION");
        expect({ count, status: after.status, audits: (await audits(id)).length }).toEqual({ count: 1, status: "failed", audits: 0 });
      }
    }
  });

  test("a replace racing the tracker's broadcast → confirmed loses neither: the request stays for the worker to settle", async () => {
    const id = await payout({ status: "broadcast" });
    const [res, count] = await Promise.all([
      act("replace", id),
      worker`update chain_payouts set status = 'confirmed', updated_at = now() where withdrawal_id = ${id} and status = 'broadcast'`.then((r) => r.count),
    ]);
    expect(count).toBe(1);
    const after = await row(id);
    expect(after.status).toBe("confirmed");
    // Either the replace came first (and the tracker then confirmed it, the request kept) or it came second and was refused.
    if (res.status === 200) expect(after.operator_action).toBe("replace");
    else {
      expectProblem(res, 409, "INVALID_TRANSITION");
      expect(after.operator_action).toBeNull();
    }
  });

  test("a re-drive and a retry of the same payout at once: one wins, the other is 409, no deadlock", async () => {
    for (let i = 0; i < 10; i++) {
      const id = await payout({ status: "parked", parkedFrom: "broadcast" });
      const letter = await deadLetter(id);
      const [a, b] = await Promise.all([act("retry", id), t.api("POST", `/admin/dlq/${letter}/redrive`, {})]);
      expect([a.status, b.status].sort()).toEqual([200, 409]);
      expect((await row(id)).status).toBe("broadcast");
      expect((await t.node.db`select status from chain_dlq where id = ${letter}`)[0]!.status).toBe("redriven");
    }
  });
});
