import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Keypair } from "@solana/web3.js";
import { base58, base64 } from "@scure/base";
import { parseNetworks, solanaNetworks, type SolanaNetwork } from "../../src/integrations/chain/config";
import { SolanaPayouts, type SolanaPayoutRow } from "../../src/integrations/solana/payouts";
import { loadConfig } from "../../src/config";
import { deadUrl, LAMPORTS_PER_SIGNATURE, MAX_PROCESSING_AGE, startSolana, type SolanaChain } from "../support/solana";
import { fundedWallet, startTestNode, testNodeEnv, type TestNode } from "../support/node";
import { only, setRules, settle } from "../monitoring/support";

/**
 * Solana payouts on a real Solana runtime (LiteSVM behind a JSON-RPC adapter, test/support/solana.ts)
 * and a real node: SOL withdrawals are signed, stored before sending, broadcast, tracked to
 * `finalized` and completed once; a crash after storing re-sends the same signature; a transaction
 * lost before it landed is re-signed once, and only after the finalized block height passed its
 * blockhash's last valid height; one that landed late is never re-signed; dead or silent RPCs fail
 * nothing.
 */
const FINALITY = 4;
const SOL = 1_000_000_000n;
let chain: SolanaChain;
let t: TestNode;
/** The network as NETWORKS_FILE would give it (JSON). */
let solana: Record<string, unknown>;
let networks: Record<string, SolanaNetwork>;
let payouts: SolanaPayouts;
const hot = Keypair.generate();
const workers: SolanaPayouts[] = [];

function worker(rpcUrls: string[] = [chain.url], rpcTimeoutMs = 2_000, historyWindowBlocks?: bigint): SolanaPayouts {
  const w = new SolanaPayouts(t.node.db, t.node.ops, t.node.vault, solanaNetworks(parseNetworks({ solana: { ...solana, rpcUrls } })), 3_600_000, false, {
    rpcTimeoutMs,
    ...(historyWindowBlocks === undefined ? {} : { historyWindowBlocks }),
  });
  workers.push(w);
  return w;
}

beforeAll(async () => {
  chain = await startSolana({ finality: FINALITY });
  chain.airdrop(hot.publicKey, 1_000n * SOL);
  t = await startTestNode("solana-payouts", { COFFER_TEST_STRIPE: "off" });
  solana = { kind: "solana", rpcUrls: [chain.url], assets: { SOL: { native: true } } };
  networks = solanaNetworks(parseNetworks({ solana }));
  payouts = new SolanaPayouts(t.node.db, t.node.ops, t.node.vault, networks, 3_600_000);
  workers.push(payouts);
  expect(await payouts.hotWallets.import("solana", base58.encode(hot.secretKey), "solana")).toBe(hot.publicKey.toBase58());
}, 60_000);
afterAll(async () => {
  chain.unresponsive = false;
  for (const w of workers) await w.stop();
  await t?.stop();
  await chain?.stop();
});

async function requestWithdrawal(amount: string, to = Keypair.generate().publicKey.toBase58()): Promise<{ wallet: string; withdrawalId: string; to: string }> {
  const wallet = await fundedWallet(t.api, "SOL", "10");
  const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination: { type: "crypto", network: "solana", address: to } });
  expect(res.status).toBe(201);
  return { wallet, withdrawalId: res.body.id, to };
}

async function withdrawalStatus(id: string): Promise<string> {
  const [row] = await t.node.db`select status from withdrawals where id = ${id}`;
  return row!.status as string;
}

const row = async (id: string): Promise<SolanaPayoutRow> => (await payouts.row(id))!;
/** Transactions that landed paying `to` (each a transfer from the hot wallet). */
const landedTo = (to: string) => chain.landed().filter((l) => l.tx.message.staticAccountKeys.some((k) => k.toBase58() === to));
/** Blocks until the processed height is `height`. */
const advanceTo = (height: bigint) => chain.advance(Number(height - chain.height()));

/** Sends raw bytes to the chain as another process (or an old copy still in flight) would. */
async function sendRaw(raw: string): Promise<string> {
  const res = await fetch(chain.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sendTransaction", params: [raw, { encoding: "base64", skipPreflight: true }] }),
  });
  const body = (await res.json()) as { result?: string; error?: { message: string } };
  if (!body.result) throw new Error(`sendTransaction: ${body.error?.message}`);
  return body.result;
}

// First, while the outbox is short: monitoring reads every event committed before it.
describe("with monitoring on", () => {
  test("a new SOL withdrawal is claimed only after monitoring read it: a hold parks it before anything is signed, a release lets it go", async () => {
    const gated = new SolanaPayouts(t.node.db, t.node.ops, t.node.vault, networks, 3_600_000, true);
    workers.push(gated);
    await setRules(t, only({ newDestination: { outcome: "hold" } }));
    const { withdrawalId } = await requestWithdrawal("0.09");
    // Monitoring has not read the request yet: the worker leaves it alone.
    expect(await gated.pass()).not.toHaveProperty(withdrawalId);
    expect(await payouts.row(withdrawalId)).toBeUndefined();
    await settle(t);
    expect(await withdrawalStatus(withdrawalId)).toBe("manual_review");
    expect(await gated.pass()).not.toHaveProperty(withdrawalId);
    expect(await payouts.row(withdrawalId)).toBeUndefined();
    expect((await t.api("POST", `/admin/withdrawals/${withdrawalId}/release`, {})).status).toBe(200);
    expect((await gated.pass())[withdrawalId]).toBe("wait");
    expect((await payouts.row(withdrawalId))!.status).toBe("broadcast");
    await setRules(t, only({}));
    chain.land();
    chain.advance(FINALITY);
    expect(await gated.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
  }, 30_000);
});

describe("Solana payouts (SOL, LiteSVM)", () => {
  test("a withdrawal is paid once and completes only at finalized", async () => {
    const { wallet, withdrawalId, to } = await requestWithdrawal("0.5");
    const hotBefore = chain.balance(hot.publicKey);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const sent = await row(withdrawalId);
    expect(sent.status).toBe("broadcast");
    expect(sent.attempts).toHaveLength(1);
    expect(sent.tx_hash).toBe(sent.attempts[0]!.hash);
    expect(sent.raw_tx).toBe(sent.attempts[0]!.raw);
    expect(BigInt(sent.last_valid_block_height!)).toBe(BigInt(sent.attempts[0]!.lastValidBlockHeight));
    expect(chain.pending()).toEqual([sent.tx_hash!]);
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    expect(chain.balance(to)).toBe(0n);

    expect(chain.land().landed).toEqual([sent.tx_hash!]);
    expect(chain.balance(to)).toBe(SOL / 2n);
    // Processed, then confirmed: not final yet.
    expect(await payouts.step(withdrawalId)).toBe("wait");
    chain.advance(FINALITY - 1);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    expect((await row(withdrawalId)).block_number).toBe(String(chain.status(sent.tx_hash!)!.slot));
    chain.advance(1);
    expect(await payouts.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    const done = await row(withdrawalId);
    expect(done.status).toBe("completed");
    expect(done.fee_wei).toBe(String(LAMPORTS_PER_SIGNATURE));
    // The hot wallet paid exactly the amount and the fee the runtime charged.
    expect(chain.balance(hot.publicKey)).toBe(hotBefore - SOL / 2n - LAMPORTS_PER_SIGNATURE);
    // Steps again change nothing: paid once.
    await payouts.pass();
    chain.land();
    expect(chain.balance(to)).toBe(SOL / 2n);
    expect(landedTo(to)).toHaveLength(1);
    const view = await t.api("GET", `/v1/wallets/${wallet}`);
    expect(view.body.balance.held).toBe("0.000000000");
    expect(view.body.balance.posted).toBe("9.500000000");
    // The hold is posted out to the chain payouts account, once; the fee is booked once, off the user's wallet.
    const postings = await t.node.db`select p.account, p.amount::text as amount from postings p join journals j on j.id = p.journal_id
      where j.wallet_id = ${wallet} and j.kind = 'withdrawal'`;
    expect(postings.map((r) => [r.account, r.amount]).sort()).toEqual([[wallet, "-500000000"], ["system:chain_payouts", "500000000"]].sort());
    const fees = await t.node.db`select p.account, p.amount::text as amount from postings p join journals j on j.id = p.journal_id
      where j.kind = 'network_fee' and j.source_id = ${withdrawalId}`;
    expect(fees.map((r) => [r.account, r.amount]).sort()).toEqual([["system:hot_wallets:solana", "-5000"], ["system:network_fees:solana", "5000"]]);
  }, 30_000);

  test("a crash after storing the signature: a new worker sends the same bytes, paid once", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.25");
    expect(await payouts.claim(withdrawalId)).toBe("done");
    expect(await payouts.sign(await row(withdrawalId))).toBe("done");
    const signed = await row(withdrawalId);
    expect(signed.status).toBe("signed");
    expect(chain.sends(signed.tx_hash!)).toBe(0);
    // "Crash": the process dies here. A new one takes over from the stored row.
    const restarted = worker();
    expect(await restarted.step(withdrawalId)).toBe("wait");
    const after = (await restarted.row(withdrawalId))!;
    expect(after.tx_hash).toBe(signed.tx_hash);
    expect(after.raw_tx).toBe(signed.raw_tx);
    expect(after.attempts).toEqual(signed.attempts);
    expect(chain.sends(signed.tx_hash!)).toBe(1);
    expect(chain.pending()).toEqual([signed.tx_hash!]);
    chain.land();
    chain.advance(FINALITY);
    expect(await restarted.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(chain.balance(to)).toBe(SOL / 4n);
    expect(landedTo(to)).toHaveLength(1);
  }, 30_000);

  test("a crash after broadcasting, before recording it: the same bytes again are a no-op, paid once", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.125");
    await payouts.claim(withdrawalId);
    await payouts.sign(await row(withdrawalId));
    const signed = await row(withdrawalId);
    // The dead process had sent them and the chain ran them; its row still says `signed`.
    expect(await sendRaw(signed.raw_tx!)).toBe(signed.tx_hash!);
    chain.land();
    expect(chain.balance(to)).toBe(SOL / 8n);
    const restarted = worker();
    expect(await restarted.step(withdrawalId)).toBe("wait");
    expect(chain.sends(signed.tx_hash!)).toBe(2);
    expect((await restarted.row(withdrawalId))!.attempts).toHaveLength(1);
    chain.advance(FINALITY);
    expect(await restarted.step(withdrawalId)).toBe("done");
    chain.land();
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(chain.balance(to)).toBe(SOL / 8n);
    expect(landedTo(to)).toHaveLength(1);
  }, 30_000);

  test("blockhash expiry: a lost transaction is re-signed once, only after the finalized height passed its last valid height, and paid once", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.3");
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const first = await row(withdrawalId);
    const lastValid = BigInt(first.last_valid_block_height!);
    expect(lastValid).toBeGreaterThanOrEqual(chain.height() + MAX_PROCESSING_AGE - BigInt(FINALITY));
    expect(chain.drop()).toEqual([first.tx_hash!]); // lost before it landed

    // Still valid: the same bytes are sent again, nothing is re-signed.
    advanceTo(lastValid);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect((await row(withdrawalId)).attempts).toHaveLength(1);
    expect(chain.drop()).toEqual([first.tx_hash!]);
    // Past it at the processed height, not yet at the finalized one: a block at or under lastValid could
    // still become final with it, so the worker still waits; the chain itself no longer runs it.
    chain.advance(1);
    expect(chain.height()).toBeGreaterThan(lastValid);
    expect(chain.height("finalized")).toBeLessThanOrEqual(lastValid);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect((await row(withdrawalId)).attempts).toHaveLength(1);
    expect(chain.land()).toEqual({ landed: [], dropped: [first.tx_hash!] });
    expect(chain.balance(to)).toBe(0n);

    // The finalized height passes it: nothing signed can land any more, so it is signed again, once.
    advanceTo(lastValid + BigInt(FINALITY) + 1n);
    expect(chain.height("finalized")).toBeGreaterThan(lastValid);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const second = await row(withdrawalId);
    expect(second.status).toBe("broadcast");
    expect(second.attempts).toHaveLength(2);
    expect(second.attempts[0]).toEqual(first.attempts[0]!);
    expect(second.tx_hash).toBe(second.attempts[1]!.hash);
    expect(second.tx_hash).not.toBe(first.tx_hash);
    expect(second.attempts[1]!.blockhash).not.toBe(first.attempts[0]!.blockhash);
    expect(BigInt(second.last_valid_block_height!)).toBeGreaterThan(lastValid);
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect((await row(withdrawalId)).attempts).toHaveLength(2);

    // An old copy of the first transaction still in flight can never land beside the second.
    await sendRaw(first.raw_tx!);
    const block = chain.land();
    expect(block.landed).toEqual([second.tx_hash!]);
    expect(block.dropped).toEqual([first.tx_hash!]);
    chain.advance(FINALITY);
    expect(await payouts.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    const done = await row(withdrawalId);
    expect(done.attempts).toHaveLength(2);
    expect(done.tx_hash).toBe(second.tx_hash);
    expect(chain.balance(to)).toBe((3n * SOL) / 10n);
    expect(landedTo(to)).toHaveLength(1);
  }, 30_000);

  test("a transaction that landed late, seen only after its height had passed, is never re-signed", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.2");
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const sent = await row(withdrawalId);
    const lastValid = BigInt(sent.last_valid_block_height!);
    // Held by the cluster until the very last block its blockhash allows.
    advanceTo(lastValid - 1n);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect(chain.pending()).toEqual([sent.tx_hash!]);
    expect(chain.land().landed).toEqual([sent.tx_hash!]);
    expect(chain.status(sent.tx_hash!)!.height).toBe(lastValid);
    // The worker looks again only long after the height passed lastValidBlockHeight.
    chain.advance(Number(MAX_PROCESSING_AGE));
    expect(chain.height("finalized")).toBeGreaterThan(lastValid);
    expect(await payouts.step(withdrawalId)).toBe("done");
    const done = await row(withdrawalId);
    expect(done.status).toBe("completed");
    expect(done.attempts).toHaveLength(1);
    expect(chain.pending()).toEqual([]);
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(chain.balance(to)).toBe(SOL / 5n);
    expect(landedTo(to)).toHaveLength(1);
  }, 30_000);

  test("a payout first looked at long after it expired is parked, not re-signed (the node may no longer know it landed)", async () => {
    const late = worker([chain.url], 2_000, 20n);
    const { withdrawalId, to } = await requestWithdrawal("0.05");
    expect(await late.step(withdrawalId)).toBe("wait");
    const sent = await row(withdrawalId);
    chain.drop();
    advanceTo(BigInt(sent.last_valid_block_height!) + BigInt(FINALITY) + 21n);
    expect(await late.step(withdrawalId)).toBe("done");
    const parked = await row(withdrawalId);
    expect(parked).toMatchObject({ status: "parked", parked_from: "broadcast", last_error: "expired_beyond_history_window" });
    expect(parked.attempts).toHaveLength(1);
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    expect(await late.pass()).not.toHaveProperty(withdrawalId);
    // An operator checked and retries it (back where it was parked from): signed again, paid once.
    await t.node.db`update chain_payouts set status = parked_from, parked_from = null, last_error = null where withdrawal_id = ${withdrawalId}`;
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect((await row(withdrawalId)).attempts).toHaveLength(2);
    chain.land();
    chain.advance(FINALITY);
    expect(await payouts.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(chain.balance(to)).toBe((5n * SOL) / 100n);
    expect(landedTo(to)).toHaveLength(1);
  }, 30_000);

  test("the first RPC URL dead: the next one is used", async () => {
    const fallback = worker([await deadUrl(), chain.url]);
    const { withdrawalId, to } = await requestWithdrawal("0.04");
    const sends = chain.calls.get("sendTransaction") ?? 0;
    expect(await fallback.step(withdrawalId)).toBe("wait");
    expect(chain.calls.get("sendTransaction")).toBe(sends + 1);
    chain.land();
    chain.advance(FINALITY);
    expect(await fallback.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(chain.balance(to)).toBe((4n * SOL) / 100n);
  }, 30_000);

  test("an RPC that does not answer: nothing fails, nothing is re-signed, and the payout goes through once it answers", async () => {
    // Refused connections, before anything is signed.
    const down = worker([await deadUrl()]);
    const { withdrawalId, to } = await requestWithdrawal("0.03");
    expect(await down.step(withdrawalId)).toBe("retry");
    expect(await down.step(withdrawalId)).toBe("retry");
    expect((await row(withdrawalId)).status).toBe("claimed");
    expect((await row(withdrawalId)).attempts).toEqual([]);
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");

    // A node that takes the request and never answers, after the transaction was sent.
    const silent = worker([chain.url], 300);
    expect(await silent.step(withdrawalId)).toBe("wait");
    const sent = await row(withdrawalId);
    expect(sent.status).toBe("broadcast");
    chain.unresponsive = true;
    try {
      chain.land();
      chain.advance(Number(MAX_PROCESSING_AGE) + FINALITY + 1); // long past its blockhash: only the statuses can tell it landed
      expect(await silent.step(withdrawalId)).toBe("retry");
      expect(await silent.step(withdrawalId)).toBe("retry");
      const still = await row(withdrawalId);
      expect(still.status).toBe("broadcast");
      expect(still.attempts).toHaveLength(1);
      expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    } finally {
      chain.unresponsive = false;
    }
    expect(await silent.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect((await row(withdrawalId)).attempts).toHaveLength(1);
    expect(chain.balance(to)).toBe((3n * SOL) / 100n);
    expect(landedTo(to)).toHaveLength(1);
  }, 30_000);

  test("an operator's cancel waits until nothing signed can land, then fails the withdrawal", async () => {
    const { wallet, withdrawalId, to } = await requestWithdrawal("0.06");
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const sent = await row(withdrawalId);
    chain.drop();
    await t.node.db`update chain_payouts set operator_action = 'cancel', operator_action_by = 'ops' where withdrawal_id = ${withdrawalId}`;
    // Its blockhash is still usable: nothing is sent again, nothing fails yet.
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect(chain.pending()).toEqual([]);
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    advanceTo(BigInt(sent.last_valid_block_height!) + BigInt(FINALITY) + 1n);
    expect(await payouts.step(withdrawalId)).toBe("done");
    const cancelled = await row(withdrawalId);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.attempts).toHaveLength(1);
    expect(cancelled.operator_action).toBeNull();
    expect(await withdrawalStatus(withdrawalId)).toBe("failed");
    const view = await t.api("GET", `/v1/wallets/${wallet}`);
    expect(view.body.balance.available).toBe("10.000000000");
    expect(chain.balance(to)).toBe(0n);
  }, 30_000);

  test("a transfer below a new account's rent-exempt minimum fails before anything is signed", async () => {
    const { wallet, withdrawalId, to } = await requestWithdrawal("0.0001");
    const sends = chain.calls.get("sendTransaction") ?? 0;
    expect(await payouts.step(withdrawalId)).toBe("done");
    const failed = await row(withdrawalId);
    expect(failed.status).toBe("failed");
    expect(failed.last_error).toBe("below_rent_exempt_minimum");
    expect(failed.attempts).toEqual([]);
    expect(chain.calls.get("sendTransaction") ?? 0).toBe(sends);
    expect(await withdrawalStatus(withdrawalId)).toBe("failed");
    expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.available).toBe("10.000000000");
    expect(chain.balance(to)).toBe(0n);
  }, 30_000);

  test("a transaction that landed with an error fails the withdrawal once it is final (its fee is recorded)", async () => {
    const { wallet, withdrawalId, to } = await requestWithdrawal("0.07");
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const sent = await row(withdrawalId);
    // The hot wallet is emptied under it (enough for the fee, not the transfer): the transfer runs and fails.
    const account = chain.svm.getAccount(hot.publicKey)!;
    const kept = account.lamports;
    chain.svm.setAccount(hot.publicKey, { ...account, lamports: 1_000_000 });
    try {
      expect(chain.land().landed).toEqual([sent.tx_hash!]);
      expect(chain.status(sent.tx_hash!)!.err).not.toBeNull();
      expect(await payouts.step(withdrawalId)).toBe("wait");
      expect(await withdrawalStatus(withdrawalId)).toBe("processing");
      chain.advance(FINALITY);
      expect(await payouts.step(withdrawalId)).toBe("done");
    } finally {
      chain.svm.setAccount(hot.publicKey, { ...chain.svm.getAccount(hot.publicKey)!, lamports: kept });
    }
    const failed = await row(withdrawalId);
    expect(failed.status).toBe("failed");
    expect(failed.last_error).toBe("transaction_failed");
    expect(failed.fee_wei).toBe(String(LAMPORTS_PER_SIGNATURE));
    expect(await withdrawalStatus(withdrawalId)).toBe("failed");
    expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.available).toBe("10.000000000");
    expect(chain.balance(to)).toBe(0n);
    await payouts.pass();
    expect((await row(withdrawalId)).attempts).toHaveLength(1);
  }, 30_000);

  test("a hot wallet short of runway pauses the network (nothing signed, nothing failed) until it is topped up; an operator's pause holds signing too", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.08");
    const account = chain.svm.getAccount(hot.publicKey)!;
    const kept = account.lamports;
    chain.svm.setAccount(hot.publicKey, { ...account, lamports: 50_000_000 }); // 0.05 SOL: under 0.08 + the fee margin
    try {
      expect(await payouts.step(withdrawalId)).toBe("wait");
      expect(await payouts.step(withdrawalId)).toBe("wait");
      const waiting = await row(withdrawalId);
      expect(waiting.status).toBe("claimed");
      expect(waiting.attempts).toEqual([]);
      expect(await withdrawalStatus(withdrawalId)).toBe("processing");
      const [paused] = await t.node.db`select paused, paused_by, hot_balance::text as hot_balance from chain_networks where network = 'solana'`;
      expect(paused).toMatchObject({ paused: true, paused_by: "runway", hot_balance: "50000000" });
      const alerts = await t.node.db`select rule from monitoring_alerts where rule = 'hot_wallet_runway' and subject_id = 'solana'`;
      expect(alerts).toHaveLength(1);
    } finally {
      chain.svm.setAccount(hot.publicKey, { ...chain.svm.getAccount(hot.publicKey)!, lamports: kept });
    }
    // An operator's pause: the balance is enough again, still nothing is signed.
    await t.node.db`update chain_networks set paused_by = 'operator' where network = 'solana'`;
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect((await row(withdrawalId)).attempts).toEqual([]);
    await t.node.db`update chain_networks set paused = false, paused_by = null where network = 'solana'`;
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect((await row(withdrawalId)).status).toBe("broadcast");
    chain.land();
    chain.advance(FINALITY);
    expect(await payouts.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(chain.balance(to)).toBe((8n * SOL) / 100n);
  }, 30_000);

  test("the hot-wallet CLI imports a Solana key from stdin (never printing it) and shows the balance in lamports", async () => {
    const file = `${process.env.TMPDIR ?? "/tmp"}/coffer-networks-${crypto.randomUUID()}.json`;
    await Bun.write(file, JSON.stringify({ solana }));
    const env = { ...process.env, DATABASE_URL: t.db.url, NETWORKS_FILE: file, ENCRYPTION_KEYS_FILE: loadConfig(await testNodeEnv()).vaultFile };
    const run = async (args: string[], stdin?: string) => {
      const proc = Bun.spawn(["bun", "src/cli/coffer.ts", "hot-wallet", ...args], { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { out, err, code };
    };
    const secretBase58 = base58.encode(hot.secretKey);
    // The same key again, as the JSON array solana-keygen writes: the same address.
    const imported = await run(["import", "--network", "solana"], `${JSON.stringify([...hot.secretKey])}\n`);
    expect(imported.err).toBe("");
    expect(imported.code).toBe(0);
    expect(imported.out.trim()).toBe(`solana: ${hot.publicKey.toBase58()}`);
    const [row] = await t.node.db`select sealed_key::text as sealed from hot_wallets where network = 'solana'`;
    for (const secret of [secretBase58.slice(0, 24), base64.encode(hot.secretKey.slice(0, 18)), hot.secretKey.slice(0, 8).join(",")]) {
      expect(imported.out + imported.err).not.toContain(secret);
      expect(row!.sealed as string).not.toContain(secret);
    }
    expect((await payouts.hotWallets.solanaKeypair("solana"))!.publicKey.toBase58()).toBe(hot.publicKey.toBase58());
    expect(await payouts.hotWallets.signer("solana")).toBeUndefined();
    const shown = await run(["show"]);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`solana: ${hot.publicKey.toBase58()} ${chain.balance(hot.publicKey)} lamports`);
    // A wrong key (base58 of 64 bytes whose halves do not match), a short one, a short array, an EVM key: refused, never echoed, nothing replaced.
    const wrong = base58.encode(Keypair.generate().secretKey.map((b, i) => (i >= 32 ? hot.secretKey[i]! : b)));
    for (const bad of [wrong, wrong.slice(0, 40), "[1,2,3]", `0x${"11".repeat(32)}`]) {
      const error = await payouts.hotWallets.import("solana", bad, "solana").then(() => undefined, (e: Error) => e);
      expect(error?.message).toStartWith("not a valid Solana secret key");
      expect(error!.message).not.toContain(bad.slice(2, 20));
    }
    expect((await payouts.hotWallets.solanaKeypair("solana"))!.publicKey.toBase58()).toBe(hot.publicKey.toBase58());
  }, 60_000);
});
