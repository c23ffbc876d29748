import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Keypair } from "@solana/web3.js";
import { base58 } from "@scure/base";
import postgres from "postgres";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { apiFor, fundedWallet, type Api } from "../support/node";
import { chainServiceEnv, importHotWallet, killedItself, requestAll } from "../support/chain-service";
import { startService, type ServiceProcess } from "../support/process";
import { LAMPORTS_PER_SIGNATURE, MAX_PROCESSING_AGE, startSolana, type SolanaChain } from "../support/solana";

/**
 * The real service (a subprocess) paying SOL withdrawals on a real Solana runtime (LiteSVM behind
 * the JSON-RPC server of test/support/solana.ts, in this process), SIGKILLed by itself at a named
 * crash point of the Solana payout worker (src/crash.ts), then started again, unarmed, on the same
 * database:
 *
 * - `chain.after_sign`: the signed transaction is stored (committed), nothing is sent;
 * - `chain.after_broadcast`: the RPC node took the transaction, the payout's row still says `signed`.
 *
 * Nothing lands on its own here: after the restart the test lands what was sent and makes blocks
 * until it is finalized, never as far as any blockhash's expiry. Either way every payout completes
 * with exactly one signature (the one stored before the death keeps its bytes), each recipient got
 * its amount once, the hot wallet lost exactly the amounts plus the fees recorded on the rows, and
 * the ledger posted each withdrawal once.
 */
const PAYOUTS = 4;
const FINALITY = 4;
const SOL = 1_000_000_000n;
/** A new account's rent-exempt minimum (0 bytes of data): every amount here is above it. */
const RENT_EXEMPT_MINIMUM = 890_880n;
/** The service is another process: its progress is read from its database, at most this long. */
const SETTLE_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
const NETWORK = "solana";

let chain: SolanaChain;
let db: TestDatabase;
let sql: postgres.Sql;
/** What every service (and the hot-wallet CLI) of this file is configured with. */
let env: Record<string, string>;
const services: ServiceProcess[] = [];
const hot = Keypair.generate();

beforeAll(async () => {
  chain = await startSolana({ finality: FINALITY });
  env = await chainServiceEnv("solana-kill", { [NETWORK]: { kind: "solana", rpcUrls: [chain.url], assets: { SOL: { native: true } } } });
  db = await createTestDatabase("solanakill");

  // The hot wallet, imported the operator's way, before any service runs; funded by the cluster's airdrop.
  expect(await importHotWallet(db.url, env, NETWORK, base58.encode(hot.secretKey))).toBe(`${NETWORK}: ${hot.publicKey.toBase58()}`);
  chain.airdrop(hot.publicKey, 100n * SOL);
  expect(chain.balance(hot.publicKey)).toBe(100n * SOL);

  sql = postgres(db.url, { max: 2, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  for (const s of services) await s.kill();
  await sql?.end({ timeout: 5 });
  await db?.drop();
  await chain?.stop();
});

async function service(crashAt?: string): Promise<{ svc: ServiceProcess; api: Api }> {
  const svc = await startService(db.url, { ...env, ...(crashAt ? { COFFER_TEST_CRASH_AT: crashAt } : {}) });
  services.push(svc);
  return { svc, api: apiFor(svc.baseUrl) };
}

interface Attempt {
  hash: string;
  raw: string;
  blockhash: string;
  lastValidBlockHeight: string;
}

interface PayoutRow {
  withdrawal_id: string;
  status: string;
  to_address: string | null;
  tx_hash: string | null;
  raw_tx: string | null;
  last_valid_block_height: string | null;
  fee_wei: string | null;
  attempts: Attempt[];
}

/** The payout rows of these withdrawals, or of every withdrawal from these wallets. */
async function payoutRows(of: { ids: string[] } | { wallets: string[] }): Promise<PayoutRow[]> {
  const rows =
    "ids" in of
      ? await sql`select withdrawal_id::text, status, to_address, tx_hash, raw_tx, last_valid_block_height::text, fee_wei::text, attempts
          from chain_payouts where withdrawal_id = any(${of.ids}::uuid[]) order by withdrawal_id`
      : await sql`select withdrawal_id::text, status, to_address, tx_hash, raw_tx, last_valid_block_height::text, fee_wei::text, attempts
          from chain_payouts where wallet_id = any(${of.wallets}::uuid[]) order by withdrawal_id`;
  return rows as unknown as PayoutRow[];
}

/** A row as a failure message shows it (without the bytes). */
const brief = ({ raw_tx: _, attempts, ...r }: PayoutRow) => ({ ...r, attempts: attempts.length });

async function withdrawalStatuses(ids: string[]): Promise<Record<string, string>> {
  const rows = await sql`select id::text, status from withdrawals where id = any(${ids}::uuid[])`;
  return Object.fromEntries(rows.map((r) => [r.id as string, r.status as string]));
}

/**
 * Until every withdrawal and its payout is completed, the test being the cluster: whatever was sent
 * lands in the next block, and blocks are made until what landed is finalized (only as many as
 * that takes, so no blockhash comes near its expiry). A bounded number of looks at the database;
 * the failure says what was seen.
 */
async function driveUntilCompleted(ids: string[], svc: ServiceProcess, landedFrom: number): Promise<void> {
  const done = async () =>
    Object.values(await withdrawalStatuses(ids)).filter((s) => s === "completed").length === ids.length &&
    (await payoutRows({ ids })).filter((r) => r.status === "completed").length === ids.length;
  for (let attempt = 0; attempt * POLL_MS < SETTLE_TIMEOUT_MS; attempt++) {
    if (await done()) return;
    if (svc.proc.exitCode !== null || svc.proc.signalCode !== null) throw new Error(`the service exited (${svc.proc.exitCode ?? svc.proc.signalCode}) while its payouts were driven:\n${svc.output()}`);
    if (chain.pending().length) chain.land();
    const top = chain.landed().slice(landedFrom).reduce((max, l) => (l.height > max ? l.height : max), -1n);
    const finalized = chain.height("finalized");
    if (top > finalized) chain.advance(Number(top - finalized));
    await Bun.sleep(POLL_MS);
  }
  const seen = { withdrawals: await withdrawalStatuses(ids), payouts: (await payoutRows({ ids })).map(brief), pending: chain.pending(), height: String(chain.height()) };
  throw new Error(`timed out after ${SETTLE_TIMEOUT_MS} ms waiting for all ${ids.length} withdrawals and their payouts to complete after the restart; seen: ${JSON.stringify(seen)}\n${svc.output()}`);
}

interface Planned {
  wallet: string;
  to: string;
  lamports: bigint;
  key: string;
}

/** Lamports as the API writes SOL (9 decimals). */
const sol = (lamports: bigint) => `${lamports / SOL}.${(lamports % SOL).toString().padStart(9, "0")}`;

/**
 * PAYOUTS wallets funded with 1 SOL each (through the API, before any withdrawal exists), each with
 * a planned withdrawal to its own fresh address, a distinct amount above a new account's
 * rent-exempt minimum, and the idempotency key a client would reuse on every retry.
 */
async function plan(api: Api, label: string): Promise<Planned[]> {
  const planned: Planned[] = [];
  for (let i = 0; i < PAYOUTS; i++) {
    const wallet = await fundedWallet(api, "SOL", "1", `solana-kill-${label}-${i}`);
    const lamports = 10_000_000n * BigInt(i + 1) + 1n;
    expect(lamports).toBeGreaterThan(RENT_EXEMPT_MINIMUM);
    planned.push({ wallet, to: Keypair.generate().publicKey.toBase58(), lamports, key: `solana-kill-${label}-${i}-${crypto.randomUUID()}` });
  }
  return planned;
}

const withdraw = (api: Api, p: Planned) =>
  api("POST", `/v1/wallets/${p.wallet}/withdrawals`, { amount: sol(p.lamports), destination: { type: "crypto", network: NETWORK, address: p.to } }, { key: p.key });

/** Transactions that landed paying `to`. */
const landedTo = (to: string) => chain.landed().filter((l) => l.tx.message.staticAccountKeys.some((k) => k.toBase58() === to));

async function killAndRestart(point: "chain.after_sign" | "chain.after_broadcast"): Promise<void> {
  const hotBefore = chain.balance(hot.publicKey);
  const landedFrom = chain.landed().length;
  const heightBefore = chain.height();
  expect(chain.pending()).toEqual([]);

  const first = await service(point);
  const planned = await plan(first.api, point.replace(/\W/g, ""));
  const answered = await requestAll(planned, (p) => withdraw(first.api, p));
  const wallets = planned.map((p) => p.wallet);
  await killedItself(first.svc, point, SETTLE_TIMEOUT_MS, async () => (await payoutRows({ wallets })).map(brief));

  // Where it died: signatures stored (the worker steps several payouts at once, so one or more),
  // no row past `signed`, nothing landed (nothing lands before the test says so).
  const atDeath = await payoutRows({ wallets });
  expect(atDeath.filter((r) => !["claimed", "signed"].includes(r.status)).map(brief)).toEqual([]);
  const killed = atDeath.filter((r) => r.status === "signed");
  expect(killed.length).toBeGreaterThanOrEqual(1);
  for (const k of killed) {
    expect(k.attempts).toHaveLength(1);
    expect(k.attempts[0]).toMatchObject({ hash: k.tx_hash, raw: k.raw_tx, lastValidBlockHeight: k.last_valid_block_height });
    expect(base58.decode(k.tx_hash!)).toHaveLength(64);
    expect(chain.status(k.tx_hash!)).toBeUndefined();
  }
  expect(chain.landed().length).toBe(landedFrom);
  if (point === "chain.after_sign") {
    // Nothing was sent: the cluster never saw any of them.
    for (const k of killed) expect({ hash: k.tx_hash, sends: chain.sends(k.tx_hash!) }).toEqual({ hash: k.tx_hash, sends: 0 });
    expect(chain.pending()).toEqual([]);
  } else {
    // The node took one (at least) and its row still says `signed`.
    const sent = killed.filter((k) => chain.sends(k.tx_hash!) >= 1);
    expect(sent.length).toBeGreaterThanOrEqual(1);
    for (const k of sent) expect(chain.pending()).toContain(k.tx_hash!);
    expect(chain.pending().every((s) => killed.some((k) => k.tx_hash === s))).toBe(true);
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
  expect((await sql`select count(*)::int as n from withdrawals where wallet_id = any(${wallets}::uuid[])`)[0]!.n).toBe(PAYOUTS);
  for (const k of killed) expect(ids).toContain(k.withdrawal_id);

  await driveUntilCompleted(ids, second.svc, landedFrom);

  const rows = await payoutRows({ ids });
  expect(rows.map((r) => r.status)).toEqual(Array(PAYOUTS).fill("completed"));
  // No blockhash came near its expiry (the finalized height never passed any attempt's last valid
  // height), so nothing may have been signed again: exactly one signature per payout.
  const lastValid = rows.flatMap((r) => r.attempts.map((a) => BigInt(a.lastValidBlockHeight)));
  expect(chain.height("finalized")).toBeLessThanOrEqual(lastValid.reduce((min, v) => (v < min ? v : min)));
  expect(chain.height() - heightBefore).toBeLessThan(MAX_PROCESSING_AGE);
  for (const r of rows) {
    expect({ withdrawal: r.withdrawal_id, attempts: r.attempts.length }).toEqual({ withdrawal: r.withdrawal_id, attempts: 1 });
    expect({ hash: r.tx_hash, raw: r.raw_tx }).toEqual({ hash: r.attempts[0]!.hash, raw: r.attempts[0]!.raw });
  }
  // What was signed before the death is what landed after it: the same signature, the same bytes.
  for (const k of killed) {
    const again = rows.find((r) => r.withdrawal_id === k.withdrawal_id)!;
    expect({ hash: again.tx_hash, raw: again.raw_tx, attempts: again.attempts }).toEqual({ hash: k.tx_hash, raw: k.raw_tx, attempts: k.attempts });
  }

  // Exactly one landed transaction per payout, each a successful transfer from the hot wallet, each
  // the row's signature, its fee the one the row recorded.
  const landed = chain.landed().slice(landedFrom);
  expect(landed.map((l) => l.signature).sort()).toEqual(rows.map((r) => r.tx_hash!).sort());
  for (const l of landed) {
    const r = rows.find((row) => row.tx_hash === l.signature)!;
    expect({ withdrawal: r.withdrawal_id, err: l.err, payer: l.tx.message.staticAccountKeys[0]!.toBase58(), fee: r.fee_wei }).toEqual({
      withdrawal: r.withdrawal_id,
      err: null,
      payer: hot.publicKey.toBase58(),
      fee: String(l.fee),
    });
  }
  expect(chain.pending()).toEqual([]);

  // Each recipient got its amount once; the hot wallet lost exactly the amounts and the recorded fees.
  for (const p of planned) {
    expect({ to: p.to, received: chain.balance(p.to), transfers: landedTo(p.to).length }).toEqual({ to: p.to, received: p.lamports, transfers: 1 });
  }
  const fees = rows.reduce((sum, r) => sum + BigInt(r.fee_wei!), 0n);
  expect(fees).toBe(LAMPORTS_PER_SIGNATURE * BigInt(PAYOUTS));
  const amounts = planned.reduce((sum, p) => sum + p.lamports, 0n);
  expect(hotBefore - chain.balance(hot.publicKey)).toBe(amounts + fees);

  // The ledger: each withdrawal posted once, each fee booked once, each wallet debited once.
  for (const [i, p] of planned.entries()) {
    const journals = await sql`select j.kind from journals j where j.source_id = ${ids[i]!} and j.kind in ('withdrawal', 'network_fee') order by j.kind`;
    expect(journals.map((j) => j.kind)).toEqual(["network_fee", "withdrawal"]);
    const [w] = await sql`select posted::text as posted, held::text as held from wallets where id = ${p.wallet}`;
    expect({ posted: BigInt(w!.posted as string), held: BigInt(w!.held as string) }).toEqual({ posted: SOL - p.lamports, held: 0n });
  }
  expect((await second.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
  await second.svc.kill();
}

describe("SIGKILL inside the Solana payout pipeline (real service, LiteSVM)", () => {
  test("killed after the signed transaction was stored, before it was sent: after the restart the same signature lands, one per payout", async () => {
    await killAndRestart("chain.after_sign");
  }, 90_000);

  test("killed after the node took the transaction, before the row said so: after the restart the same signature lands, one per payout", async () => {
    await killAndRestart("chain.after_broadcast");
  }, 90_000);
});
