import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base58 } from "@scure/base";
import { Address } from "@ton/core";
import { formatEther, getAddress, hexlify, randomBytes } from "ethers";
import { validateAddress, type AddressContext } from "../../lib/addresses";
import { NETWORK_ASSETS, NETWORKS, type Network } from "../../lib/networks";
import { loadConfig } from "../../src/config";
import { verifyLedger } from "../../src/ledger/verify";
import { startNode, type Node } from "../../src/node";
import type { Caller } from "../../src/api/wallet-service";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { ADMIN, callerFor, testKeys, tokenFor } from "../support/auth";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { inParallel, percentile } from "./measure";

/**
 * The chain part of `bun run bench` (issue 13): two measurements, printed, never asserted.
 *
 * 1. Address validation per network: `validateAddress` called exactly as `payableAddress`
 *    (src/api/wallet-service.ts) calls it at withdrawal request (the network's first asset, the
 *    amount, the clock), on one valid and one invalid address per network, for
 *    BENCH_VALIDATION_SECONDS each after a short warm-up (the median rate of five slices). The invalid one breaks the rule a typo
 *    breaks where the network has a checksum (one character changed), so the whole check runs.
 *
 * 2. ETH payouts on a real Anvil (automine) through a real node: the node's own EVM payout worker
 *    (src/node.ts starts it when NETWORKS_FILE names a network; confirmations 1 here), the hot
 *    wallet imported from Anvil's account 0, BENCH_CHAIN_PAYOUTS withdrawals requested over HTTP
 *    from BENCH_CHAIN_WALLETS funded ETH wallets (BENCH_CONCURRENCY callers), each to its own fresh
 *    address. Then the database is polled every BENCH_CHAIN_POLL_MS until every withdrawal is
 *    `completed` or failed, or BENCH_CHAIN_DEADLINE_SECONDS pass (what finished is printed either
 *    way). Reported: payouts per second (completed / (last completion − first request)), and the
 *    latency request → broadcast and request → completed, p50/p99. "Request" is when the POST
 *    was sent; "broadcast" is chain_payouts.broadcast_at where the worker records it, else the
 *    first poll that saw the payout broadcast (so at most one poll interval late); "completed" is
 *    the withdrawal's updated_at when it reached `completed` (the node's clock, this machine's).
 *    Afterwards: every recipient's balance on chain against its withdrawal, nonces, and the ledger
 *    verifier.
 *
 * Env: BENCH_VALIDATION_SECONDS (0.5), BENCH_CHAIN_PAYOUTS (1000), BENCH_CHAIN_WALLETS (100),
 * BENCH_CHAIN_POLL_MS (100), BENCH_CHAIN_DEADLINE_SECONDS (600), BENCH_CONCURRENCY (16). The node
 * reads its own settings (MONITORING, DB_POOL_MAX, ...) from the environment as usual; monitoring is
 * on unless told otherwise, as in production, so the worker waits for its verdict on each request.
 */
export interface ChainBenchOptions {
  concurrency: number;
}

const VALIDATION_SECONDS = envNumber("BENCH_VALIDATION_SECONDS", 0.5);
const PAYOUTS = Math.floor(envNumber("BENCH_CHAIN_PAYOUTS", 1000));
const WALLETS = Math.floor(envNumber("BENCH_CHAIN_WALLETS", 100));
const POLL_MS = envNumber("BENCH_CHAIN_POLL_MS", 100);
const DEADLINE_SECONDS = envNumber("BENCH_CHAIN_DEADLINE_SECONDS", 600);
/** Each payout: 0.001 ETH. Each wallet gets enough for its share and one more. */
const PAYOUT = "0.001";
const PAYOUT_WEI = 1_000_000_000_000_000n;
const CALLER: Caller = callerFor(ADMIN);
const HTTP_TIMEOUT_MS = 30_000;
const CHAIN_ID = 31337;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

export async function chainBench(o: ChainBenchOptions): Promise<void> {
  console.log("");
  const validation = addressValidationBench();
  console.log("");
  const payouts = await payoutBench(o);
  console.log("");
  console.log(JSON.stringify({ bench: "chain", validation_seconds: VALIDATION_SECONDS, validation, payouts }));
}

// ---------------------------------------------------------------------------------------------
// Address validation

interface Sample {
  valid: string;
  invalid: string;
  /** What the invalid one is, in a few words. */
  invalidIs: string;
  /** Lightning invoices name an amount and expire: the context they are valid in. */
  context?: Partial<AddressContext>;
}

/** One character of `s` at `index` replaced by the next one of `alphabet` (a typo the checksum must catch). */
function typo(s: string, index: number, alphabet: string): string {
  const i = index < 0 ? s.length + index : index;
  const c = s[i]!;
  const next = alphabet[(alphabet.indexOf(c.toLowerCase()) + 1) % alphabet.length]!;
  return s.slice(0, i) + (c === c.toUpperCase() && c !== c.toLowerCase() ? next.toUpperCase() : next) + s.slice(i + 1);
}

const BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
/** EIP-55's own example, and the same with one letter's case flipped (the checksum must refuse it). */
const EVM_VALID = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const EVM_SAMPLE: Sample = { valid: EVM_VALID, invalid: `${EVM_VALID.slice(0, 3)}A${EVM_VALID.slice(4)}`, invalidIs: "one letter's case flipped" };
/** BOLT-11's "coffee beans" example: 2 500 000 sat, signed at 1496314658, one hour to live. */
const LIGHTNING_INVOICE =
  "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu";
const TON_HASH = Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 5) % 256));
const TON_FRIENDLY = new Address(0, TON_HASH).toString({ bounceable: true, urlSafe: true, testOnly: false });
const SOLANA_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 73 + 41) % 256);

const SAMPLES: Record<Network, Sample> = {
  bitcoin: { valid: "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", invalid: typo("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", -1, BECH32), invalidIs: "one character changed" },
  "bitcoin-testnet": {
    valid: "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
    invalid: typo("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", -1, BECH32),
    invalidIs: "one character changed",
  },
  lightning: {
    valid: LIGHTNING_INVOICE,
    invalid: typo(LIGHTNING_INVOICE, -3, BECH32),
    invalidIs: "one character changed",
    context: { amountMinor: 2_500_000n, now: new Date((1496314658 + 30) * 1000) },
  },
  ethereum: EVM_SAMPLE,
  polygon: EVM_SAMPLE,
  base: EVM_SAMPLE,
  arbitrum: EVM_SAMPLE,
  optimism: EVM_SAMPLE,
  bsc: EVM_SAMPLE,
  avalanche: EVM_SAMPLE,
  linea: EVM_SAMPLE,
  // Base58 has no checksum: a changed character is another valid key. The error that can be caught is the length.
  solana: { valid: base58.encode(SOLANA_KEY), invalid: base58.encode(Uint8Array.of(...SOLANA_KEY, 7)), invalidIs: "33 bytes" },
  near: { valid: "app.alice.near", invalid: "app..alice.near", invalidIs: "two separators in a row" },
  ton: { valid: TON_FRIENDLY, invalid: typo(TON_FRIENDLY, 10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), invalidIs: "one character changed (CRC16)" },
};

interface ValidationResult {
  network: Network;
  valid_per_s: number;
  invalid_per_s: number;
  invalid_rule: string;
}

/** As payableAddress builds it: the network's asset, the withdrawal's amount, the clock now. */
function contextFor(network: Network, sample: Sample): () => AddressContext {
  const asset = NETWORK_ASSETS[network][0];
  if (sample.context?.now) {
    const fixed = { asset, amountMinor: 1n, ...sample.context } as AddressContext;
    return () => fixed;
  }
  return () => ({ asset, amountMinor: sample.context?.amountMinor ?? 1n, now: new Date() });
}

const SLICES = 5;

/** Validations per second of one address over `seconds` (after a tenth of that as warm-up), the median of five slices; throws if it answers other than expected. */
function validationsPerSecond(network: Network, address: string, context: () => AddressContext, expectOk: boolean, seconds: number): { perSecond: number; rule: string } {
  const first = validateAddress(network, address, context());
  if (first.ok !== expectOk) throw new Error(`bench sample for ${network} (${expectOk ? "valid" : "invalid"}) answered ${JSON.stringify(first)}`);
  const rule = first.ok ? "ok" : first.rule;
  const BATCH = 64;
  let sink = 0;
  const run = (ms: number): { n: number; ms: number } => {
    const start = performance.now();
    const end = start + ms;
    let n = 0;
    let t = start;
    while (t < end) {
      for (let i = 0; i < BATCH; i++) if (validateAddress(network, address, context()).ok) sink++;
      n += BATCH;
      t = performance.now();
    }
    return { n, ms: t - start };
  };
  run(seconds * 100);
  // Five slices, the median reported: a neighbour's burst of CPU (a test run, the GC) skews one slice, not the figure.
  const rates = Array.from({ length: SLICES }, () => run((seconds * 1000) / SLICES))
    .map((m) => m.n / (m.ms / 1000))
    .sort((a, b) => a - b);
  if (sink < 0) console.log(sink); // keeps the results alive
  return { perSecond: rates[Math.floor(SLICES / 2)]!, rule };
}

export function addressValidationBench(seconds = VALIDATION_SECONDS): ValidationResult[] {
  console.log(`address validation: validateAddress as payableAddress calls it, one valid and one invalid address per network, ${seconds}s each after warm-up (median of ${SLICES} slices)`);
  const results: ValidationResult[] = [];
  for (const network of NETWORKS) {
    const sample = SAMPLES[network];
    const context = contextFor(network, sample);
    const valid = validationsPerSecond(network, sample.valid, context, true, seconds);
    const invalid = validationsPerSecond(network, sample.invalid, context, false, seconds);
    results.push({ network, valid_per_s: Math.round(valid.perSecond), invalid_per_s: Math.round(invalid.perSecond), invalid_rule: `${invalid.rule} (${sample.invalidIs})` });
  }
  printColumns(
    ["network", "valid per s", "us each", "invalid per s", "us each", "invalid: rule broken"],
    results.map((r) => [r.network, fmtInt(r.valid_per_s), (1e6 / r.valid_per_s).toFixed(2), fmtInt(r.invalid_per_s), (1e6 / r.invalid_per_s).toFixed(2), r.invalid_rule]),
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// ETH payouts on Anvil

interface Tracked {
  id: string;
  to: string;
  requestedAt: number;
  /** First poll that saw it broadcast (or later), epoch ms. */
  seenBroadcastAt?: number;
  broadcastAt?: number;
  completedAt?: number;
  status: string;
  payoutStatus?: string;
  nonce?: bigint;
}

interface PayoutResult {
  requested: number;
  refused: number;
  completed: number;
  failed: number;
  unfinished: number;
  deadline_hit: boolean;
  request_phase_s: number;
  requests_per_s: number;
  payouts_per_s: number;
  window_s: number;
  request_to_broadcast_ms: { p50: number | null; p99: number | null; source: string };
  request_to_completed_ms: { p50: number | null; p99: number | null };
  broadcast_to_completed_ms: { p50: number | null; p99: number | null };
  chain_agrees: boolean;
  nonces: string;
  ledger_clean: boolean;
}

async function payoutBench(o: ChainBenchOptions): Promise<PayoutResult | { skipped: string }> {
  let anvil: Anvil | undefined;
  let db: TestDatabase | undefined;
  let node: Node | undefined;
  let server: ReturnType<typeof Bun.serve> | undefined;
  const dir = mkdtempSync(join(tmpdir(), "coffer-bench-chain-"));
  try {
    anvil = await startAnvil({ chainId: CHAIN_ID });
    const networksFile = join(dir, "networks.json");
    await Bun.write(networksFile, JSON.stringify({ ethereum: { kind: "evm", chainId: CHAIN_ID, rpcUrls: [anvil.url], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 1 } }));
    db = await createTestDatabase("benchchain");
    const config = loadConfig({ JWT_KEYS_FILE: (await testKeys()).file, RATE_LIMITS: "off", ...process.env, NATS_URL: undefined, DATABASE_URL: db.url, NETWORKS_FILE: networksFile });
    node = await startNode(config, db.url);
    if (!node.chainPayouts) return skipped("the node started no EVM payout worker for NETWORKS_FILE");
    const hot = anvilAccount(0);
    await node.chainPayouts.hotWallets.import("ethereum", hot.privateKey);
    server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: node.http.fetch });
    const baseUrl = `http://127.0.0.1:${server.port}`;
    const token = await tokenFor(ADMIN);
    console.log(
      `chain payouts: ${PAYOUTS} withdrawals of ${PAYOUT} ETH from ${WALLETS} wallets over HTTP (${o.concurrency} callers), Anvil automine, confirmations 1, ` +
        `the node's own worker, MONITORING=${config.MONITORING}; polling every ${POLL_MS} ms, deadline ${DEADLINE_SECONDS} s`,
    );

    const wallets = await openEthWallets(node, WALLETS, Math.ceil(PAYOUTS / WALLETS) + 1, o.concurrency);
    const startNonce = BigInt(await anvil.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]));

    // Request every withdrawal, as fast as the callers go; the worker starts on the first ones meanwhile.
    const tracked: Tracked[] = [];
    const refusals = new Map<string, number>();
    const requestStart = Date.now();
    await inParallel(
      Array.from({ length: PAYOUTS }, (_, i) => i),
      o.concurrency,
      async (i) => {
        const walletId = wallets[i % wallets.length]!;
        const to = getAddress(hexlify(randomBytes(20)));
        const requestedAt = Date.now();
        try {
          const res = await fetch(`${baseUrl}/v1/wallets/${walletId}/withdrawals`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "idempotency-key": crypto.randomUUID() },
            body: JSON.stringify({ amount: PAYOUT, destination: { type: "crypto", network: "ethereum", address: to } }),
            signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
          });
          const body = (await res.json()) as { id?: string; code?: string };
          if (res.status === 201 && body.id) tracked.push({ id: body.id, to, requestedAt, status: "requested" });
          else refusals.set(`${res.status} ${body.code ?? ""}`, (refusals.get(`${res.status} ${body.code ?? ""}`) ?? 0) + 1);
        } catch (error) {
          const why = String((error as Error)?.message ?? error).slice(0, 80);
          refusals.set(why, (refusals.get(why) ?? 0) + 1);
        }
      },
    );
    const requestEnd = Date.now();
    const requestPhase_s = (requestEnd - requestStart) / 1000;
    console.log(`  ${tracked.length} withdrawals accepted in ${requestPhase_s.toFixed(1)} s (${(tracked.length / requestPhase_s).toFixed(0)}/s)${refusals.size ? `; refused: ${[...refusals].map(([k, n]) => `${n}x ${k}`).join(", ")}` : ""}`);

    // Poll until every one is final or the deadline passes.
    const deadline = requestStart + DEADLINE_SECONDS * 1000;
    const byId = new Map(tracked.map((t) => [t.id, t]));
    const ids = tracked.map((t) => t.id);
    let lastReport = Date.now();
    let deadlineHit = false;
    for (;;) {
      const rows = await node.db`select w.id, w.status, (extract(epoch from w.updated_at) * 1000)::float8 as updated_ms,
          p.status as payout_status, p.tx_hash, p.nonce::text as nonce, (extract(epoch from p.broadcast_at) * 1000)::float8 as broadcast_ms
        from withdrawals w left join chain_payouts p on p.withdrawal_id = w.id
        where w.id = any(${node.db.array(ids)}::uuid[])`;
      const seenAt = Date.now();
      for (const r of rows) {
        const t = byId.get(r.id as string)!;
        t.status = r.status as string;
        t.payoutStatus = (r.payout_status as string | null) ?? undefined;
        if (r.nonce !== null) t.nonce = BigInt(r.nonce as string);
        if (r.broadcast_ms !== null) t.broadcastAt = Number(r.broadcast_ms);
        if (t.seenBroadcastAt === undefined && r.tx_hash && !["claimed", "signed"].includes(r.payout_status as string)) t.seenBroadcastAt = seenAt;
        if (t.status === "completed" && t.completedAt === undefined) t.completedAt = Number(r.updated_ms);
      }
      const open = tracked.filter((t) => !["completed", "failed", "cancelled", "rejected"].includes(t.status));
      if (open.length === 0) break;
      if (Date.now() >= deadline) {
        deadlineHit = true;
        break;
      }
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        console.log(`  ${tracked.length - open.length}/${tracked.length} final after ${((Date.now() - requestStart) / 1000).toFixed(0)} s`);
      }
      await Bun.sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
    }

    const completed = tracked.filter((t) => t.status === "completed");
    const failed = tracked.filter((t) => ["failed", "cancelled", "rejected"].includes(t.status));
    const unfinished = tracked.length - completed.length - failed.length;
    const lastCompletion = Math.max(...completed.map((t) => t.completedAt!), requestStart);
    const window_s = (lastCompletion - requestStart) / 1000;
    const recordedBroadcast = completed.some((t) => t.broadcastAt !== undefined);
    // A poll may first see a payout after it completed: its broadcast was no later than its completion.
    const broadcastOf = (t: Tracked) => (recordedBroadcast ? t.broadcastAt : t.seenBroadcastAt === undefined ? undefined : Math.min(t.seenBroadcastAt, t.completedAt ?? t.seenBroadcastAt));
    const sorted = (values: (number | undefined)[]) => Float64Array.from(values.filter((v): v is number => v !== undefined)).sort();
    const toBroadcast = sorted(tracked.map((t) => (broadcastOf(t) === undefined ? undefined : broadcastOf(t)! - t.requestedAt)));
    const toCompleted = sorted(completed.map((t) => t.completedAt! - t.requestedAt));
    const broadcastToCompleted = sorted(completed.map((t) => (broadcastOf(t) === undefined ? undefined : Math.max(0, t.completedAt! - broadcastOf(t)!))));

    // The chain's side: every completed payout's recipient holds exactly its amount, and the hot wallet's nonces are the payouts'.
    let paidRight = 0;
    await inParallel(completed, o.concurrency, async (t) => {
      if (BigInt(await anvil!.rpc<string>("eth_getBalance", [t.to, "latest"])) === PAYOUT_WEI) paidRight++;
    });
    const endNonce = BigInt(await anvil.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]));
    const nonces = tracked.filter((t) => t.nonce !== undefined).map((t) => t.nonce!).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const contiguous = nonces.every((n, i) => n === startNonce + BigInt(i));
    const noncesNote = `${nonces.length} signed, nonces ${nonces.length ? `${nonces[0]}..${nonces[nonces.length - 1]}` : "-"} ${contiguous ? "contiguous" : "NOT contiguous"}; hot wallet sent ${endNonce - startNonce} transactions`;
    const verdict = await verifyLedger(node.db);
    const chainAgrees = paidRight === completed.length;

    const p = (values: Float64Array, q: number) => (values.length ? round(percentile(values, q)) : null);
    const result: PayoutResult = {
      requested: tracked.length,
      refused: PAYOUTS - tracked.length,
      completed: completed.length,
      failed: failed.length,
      unfinished,
      deadline_hit: deadlineHit,
      request_phase_s: round(requestPhase_s),
      requests_per_s: round(tracked.length / requestPhase_s),
      payouts_per_s: round(window_s > 0 ? completed.length / window_s : 0),
      window_s: round(window_s),
      request_to_broadcast_ms: { p50: p(toBroadcast, 50), p99: p(toBroadcast, 99), source: recordedBroadcast ? "chain_payouts.broadcast_at" : `first poll that saw it broadcast (${POLL_MS} ms polls)` },
      request_to_completed_ms: { p50: p(toCompleted, 50), p99: p(toCompleted, 99) },
      broadcast_to_completed_ms: { p50: p(broadcastToCompleted, 50), p99: p(broadcastToCompleted, 99) },
      chain_agrees: chainAgrees,
      nonces: noncesNote,
      ledger_clean: verdict.ok,
    };

    if (deadlineHit) {
      const stuck = new Map<string, number>();
      for (const t of tracked.filter((x) => !["completed", "failed", "cancelled", "rejected"].includes(x.status))) {
        const k = `${t.status}/${t.payoutStatus ?? "no payout row"}`;
        stuck.set(k, (stuck.get(k) ?? 0) + 1);
      }
      console.log(`  DEADLINE: ${DEADLINE_SECONDS} s passed with ${unfinished} not final (${[...stuck].map(([k, n]) => `${n}x ${k}`).join(", ")}); reporting what finished`);
    }
    const fmtP = (x: { p50: number | null; p99: number | null }) => [x.p50 === null ? "-" : x.p50.toFixed(0), x.p99 === null ? "-" : x.p99.toFixed(0)];
    printColumns(
      ["workload", "per s", "p50 ms", "p99 ms", "done", "note"],
      [
        [`${tracked.length} ETH withdrawals requested, HTTP`, result.requests_per_s.toFixed(0), "", "", `${tracked.length}/${PAYOUTS}`, `${requestPhase_s.toFixed(1)} s`],
        [`payouts, request -> broadcast`, "", ...fmtP(result.request_to_broadcast_ms), String(toBroadcast.length), `broadcast time: ${result.request_to_broadcast_ms.source}`],
        [`payouts, broadcast -> completed`, "", ...fmtP(result.broadcast_to_completed_ms), String(broadcastToCompleted.length), "confirmations 1, automine"],
        [
          `payouts, request -> completed`,
          result.payouts_per_s.toFixed(1),
          ...fmtP(result.request_to_completed_ms),
          `${completed.length}/${tracked.length}`,
          `${window_s.toFixed(1)} s from the first request to the last completion; ${failed.length} failed${unfinished ? `, ${unfinished} unfinished` : ""}`,
        ],
      ],
    );
    console.log(`  chain: ${paidRight}/${completed.length} recipients hold exactly ${formatEther(PAYOUT_WEI)} ETH; ${noncesNote}`);
    console.log(`  ledger verifier after the run: ${verdict.ok ? "clean" : `${verdict.mismatches.length} mismatches`}`);
    return result;
  } catch (error) {
    console.log(`chain payouts part failed: ${String((error as Error)?.stack ?? error)}`);
    return skipped(`failed: ${String((error as Error)?.message ?? error).slice(0, 200)}`);
  } finally {
    await server?.stop(true);
    await node?.close();
    await db?.drop();
    await anvil?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function skipped(why: string): { skipped: string } {
  console.log(`chain payouts part skipped: ${why}`);
  return { skipped: why };
}

/** ETH wallets, each credited `perWallet` payouts' worth (admin credits, in-process as the payments bench does). */
async function openEthWallets(node: Node, count: number, perWallet: number, concurrency: number): Promise<string[]> {
  const ids: string[] = [];
  const amount = formatEther(PAYOUT_WEI * BigInt(perWallet));
  await inParallel(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => {
    const created = await node.ops.createWallet(CALLER, `chain-open-${i}`, { ownerId: `chain-bench-${i}`, asset: "ETH" });
    if (created.status !== 201) throw new Error(`wallet create failed: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id as string;
    const credited = await node.ops.credit(CALLER, `chain-fund-${i}`, id, { amount });
    if (credited.status !== 201) throw new Error(`credit failed: ${credited.status} ${JSON.stringify(credited.body)}`);
    ids.push(id);
  });
  return ids;
}

// ---------------------------------------------------------------------------------------------

function printColumns(header: string[], body: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? "").length)));
  const text = (i: number) => i === 0 || i === header.length - 1;
  const line = (cells: string[]) => cells.map((c, i) => (text(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

if (import.meta.main) {
  const { setLogLevel } = await import("../../lib/log");
  setLogLevel((process.env.LOG_LEVEL as "warn" | undefined) ?? "warn");
  await chainBench({ concurrency: Math.floor(envNumber("BENCH_CONCURRENCY", 16)) });
}
