import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Wallet, formatEther } from "ethers";
import postgres from "postgres";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { chainServiceEnv, importHotWallet, killedItself, requestAll } from "../support/chain-service";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { apiFor, fundedWallet, type Api } from "../support/node";
import { startService, type ServiceProcess } from "../support/process";

/**
 * The real service (a subprocess) paying ETH withdrawals on a real Anvil, SIGKILLed by itself at a
 * named crash point of the EVM payout worker (src/crash.ts), then started again, unarmed, on the
 * same database:
 *
 * - `chain.after_sign`: the signed transaction is stored (committed), nothing is broadcast;
 * - `chain.after_broadcast`: the node accepted the transaction, the payout's row does not say so.
 *
 * Either way, after the restart every payout completes with exactly one transaction: the hot
 * wallet's chain nonce advanced by exactly the number of payouts, each recipient got its amount
 * once, each row's stored hash is the transaction mined (the killed one's bytes unchanged), and the
 * ledger posted each withdrawal once.
 */
const PAYOUTS = 4;
/** The service is another process: its progress is read from its database, at most this long. */
const SETTLE_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

let anvil: Anvil;
let db: TestDatabase;
let sql: postgres.Sql;
/** What every service (and the hot-wallet CLI) of this file is configured with. */
let env: Record<string, string>;
const services: ServiceProcess[] = [];
const hot = anvilAccount(0);

beforeAll(async () => {
  anvil = await startAnvil({ chainId: 31337 }); // automine: a broadcast transaction is mined at once
  db = await createTestDatabase("chainkill");
  env = await chainServiceEnv("chain-kill", {
    ethereum: { kind: "evm", chainId: 31337, rpcUrls: [anvil.url], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 1 },
  });
  // The hot wallet, imported the operator's way, before any service runs.
  expect(await importHotWallet(db.url, env, "ethereum", hot.privateKey)).toBe(`ethereum: ${hot.address}`);

  sql = postgres(db.url, { max: 2, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  for (const s of services) await s.kill();
  await sql?.end({ timeout: 5 });
  await db?.drop();
  await anvil?.stop();
});

async function service(crashAt?: string): Promise<{ svc: ServiceProcess; api: Api }> {
  const svc = await startService(db.url, { ...env, ...(crashAt ? { COFFER_TEST_CRASH_AT: crashAt } : {}) });
  services.push(svc);
  return { svc, api: apiFor(svc.baseUrl) };
}

/** Until `done` holds, asking the database a bounded number of times; the failure says what was seen. */
async function until(done: () => Promise<boolean>, what: string, seen: () => Promise<unknown>, svc: ServiceProcess): Promise<void> {
  for (let attempt = 0; attempt * POLL_MS < SETTLE_TIMEOUT_MS; attempt++) {
    if (await done()) return;
    if (svc.proc.exitCode !== null || svc.proc.signalCode !== null) throw new Error(`the service exited (${svc.proc.exitCode ?? svc.proc.signalCode}) while waiting for ${what}:\n${svc.output()}`);
    await Bun.sleep(POLL_MS);
  }
  throw new Error(`timed out after ${SETTLE_TIMEOUT_MS} ms waiting for ${what}; seen: ${JSON.stringify(await seen())}\n${svc.output()}`);
}

const chainNonce = async () => BigInt(await anvil.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]));
const balance = async (address: string) => BigInt(await anvil.rpc<string>("eth_getBalance", [address, "latest"]));

interface PayoutRow {
  withdrawal_id: string;
  status: string;
  nonce: string | null;
  tx_hash: string | null;
  raw_tx: string | null;
}

async function payoutRows(ids?: string[]): Promise<PayoutRow[]> {
  const rows = ids
    ? await sql`select withdrawal_id::text, status, nonce::text, tx_hash, raw_tx from chain_payouts p where withdrawal_id = any(${ids}::uuid[]) order by p.nonce nulls last`
    : await sql`select withdrawal_id::text, status, nonce::text, tx_hash, raw_tx from chain_payouts p order by p.nonce nulls last`;
  return rows as unknown as PayoutRow[];
}

async function withdrawalStatuses(ids: string[]): Promise<Record<string, string>> {
  const rows = await sql`select id::text, status from withdrawals where id = any(${ids}::uuid[])`;
  return Object.fromEntries(rows.map((r) => [r.id as string, r.status as string]));
}

interface Planned {
  wallet: string;
  to: string;
  wei: bigint;
  key: string;
}

/**
 * PAYOUTS funded wallets (through the API, before any withdrawal exists), each with a planned
 * withdrawal to its own fresh address, a distinct amount and the idempotency key a client would
 * reuse on every retry.
 */
async function plan(api: Api, label: string): Promise<Planned[]> {
  const planned: Planned[] = [];
  for (let i = 0; i < PAYOUTS; i++) {
    const wallet = await fundedWallet(api, "ETH", "1", `chain-kill-${label}-${i}`);
    planned.push({ wallet, to: Wallet.createRandom().address, wei: 10_000_000_000_000_000n * BigInt(i + 1) + 1n, key: `chain-kill-${label}-${i}-${crypto.randomUUID()}` });
  }
  return planned;
}

const withdraw = (api: Api, p: Planned) =>
  api("POST", `/v1/wallets/${p.wallet}/withdrawals`, { amount: formatEther(p.wei), destination: { type: "crypto", network: "ethereum", address: p.to } }, { key: p.key });

async function killAndRestart(point: "chain.after_sign" | "chain.after_broadcast"): Promise<void> {
  const nonceBefore = await chainNonce();
  const first = await service(point);
  const planned = await plan(first.api, point.replace(/\W/g, ""));
  const answered = await requestAll(planned, (p) => withdraw(first.api, p));
  await killedItself(first.svc, point, SETTLE_TIMEOUT_MS, () => payoutRows());

  // Where it died: signed transactions stored (the worker steps several payouts at once, so one or
  // more), no row past `signed`.
  const atDeath = (await payoutRows()).filter((r) => r.status !== "completed");
  expect(atDeath.filter((r) => !["claimed", "signed"].includes(r.status))).toEqual([]);
  const killed = atDeath.filter((r) => r.status === "signed");
  expect(killed.length).toBeGreaterThanOrEqual(1);
  for (const k of killed) expect(k.tx_hash).toMatch(/^0x[0-9a-f]{64}$/);
  const receipts = await Promise.all(killed.map((k) => anvil.rpc<{ status: string } | null>("eth_getTransactionReceipt", [k.tx_hash])));
  if (point === "chain.after_sign") {
    // Nothing was broadcast: the chain never saw any of them.
    expect(receipts).toEqual(killed.map(() => null));
    for (const k of killed) expect(await anvil.rpc("eth_getTransactionByHash", [k.tx_hash])).toBeNull();
    expect(await chainNonce()).toBe(nonceBefore);
  } else {
    // The node took one (at least; automine mined it) and the row still says `signed`.
    expect(receipts.filter((r) => r?.status === "0x1").length).toBeGreaterThanOrEqual(1);
    expect(await chainNonce()).toBeGreaterThan(nonceBefore);
  }

  const second = await service();
  // The client sends again whatever went unanswered, under the same keys: the same withdrawals.
  const ids: string[] = [];
  for (const [i, p] of planned.entries()) {
    const res = await withdraw(second.api, p);
    expect(res.status).toBe(201);
    if (answered[i] !== undefined) expect(res.body.id).toBe(answered[i]);
    ids.push(res.body.id as string);
  }
  expect((await sql`select count(*)::int as n from withdrawals where wallet_id = any(${planned.map((p) => p.wallet)}::uuid[])`)[0]!.n).toBe(PAYOUTS);
  for (const k of killed) expect(ids).toContain(k.withdrawal_id);

  await until(
    // The wallet completes the withdrawal first, then the payout's row says so.
    async () =>
      Object.values(await withdrawalStatuses(ids)).filter((s) => s === "completed").length === PAYOUTS &&
      (await payoutRows(ids)).filter((r) => r.status === "completed").length === PAYOUTS,
    `all ${PAYOUTS} withdrawals and their payouts completed after the restart`,
    async () => ({ withdrawals: await withdrawalStatuses(ids), payouts: (await payoutRows(ids)).map(({ raw_tx: _, ...r }) => r) }),
    second.svc,
  );

  // Exactly one transaction per payout.
  expect(await chainNonce()).toBe(nonceBefore + BigInt(PAYOUTS));
  const rows = await payoutRows(ids);
  expect(rows.map((r) => r.status)).toEqual(Array(PAYOUTS).fill("completed"));
  expect(rows.map((r) => BigInt(r.nonce!))).toEqual(Array.from({ length: PAYOUTS }, (_, i) => nonceBefore + BigInt(i)));
  // What was signed before the death is what went out after it: the same bytes, the same nonce.
  for (const k of killed) {
    const again = rows.find((r) => r.withdrawal_id === k.withdrawal_id)!;
    expect({ hash: again.tx_hash, raw: again.raw_tx, nonce: again.nonce }).toEqual({ hash: k.tx_hash, raw: k.raw_tx, nonce: k.nonce });
  }
  for (const r of rows) {
    const tx = await anvil.rpc<{ from: string; nonce: string } | null>("eth_getTransactionByHash", [r.tx_hash]);
    const receipt = await anvil.rpc<{ status: string } | null>("eth_getTransactionReceipt", [r.tx_hash]);
    expect({ withdrawal: r.withdrawal_id, from: tx?.from.toLowerCase(), nonce: tx ? BigInt(tx.nonce) : undefined, mined: receipt?.status }).toEqual({
      withdrawal: r.withdrawal_id,
      from: hot.address.toLowerCase(),
      nonce: BigInt(r.nonce!),
      mined: "0x1",
    });
  }
  // Each recipient got its amount once; each wallet was debited once.
  for (const p of planned) expect({ to: p.to, received: await balance(p.to) }).toEqual({ to: p.to, received: p.wei });
  for (const [i, p] of planned.entries()) {
    const journals = await sql`select j.id from journals j where j.kind = 'withdrawal' and j.source_id = ${ids[i]!}`;
    expect(journals.length).toBe(1);
    const [w] = await sql`select posted::text as posted, held::text as held from wallets where id = ${p.wallet}`;
    expect({ posted: BigInt(w!.posted as string), held: BigInt(w!.held as string) }).toEqual({ posted: 10n ** 18n - p.wei, held: 0n });
  }
  expect((await second.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
  await second.svc.kill();
}

describe("SIGKILL inside the EVM payout pipeline (real service, real Anvil)", () => {
  test("killed after the signed transaction was stored, before its broadcast: after the restart one transaction per payout", async () => {
    await killAndRestart("chain.after_sign");
  }, 90_000);

  test("killed after the node accepted the broadcast, before the row said so: after the restart one transaction per payout", async () => {
    await killAndRestart("chain.after_broadcast");
  }, 90_000);
});
