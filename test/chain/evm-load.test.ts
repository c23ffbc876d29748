import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { Wallet, formatEther } from "ethers";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { forEachBounded } from "../support/bounded";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { freePort } from "../support/process";
import { testDir } from "../support/temp";

/**
 * Chain payouts under load, end to end on a real Anvil (automine) and a real node whose own EVM
 * payout worker runs (NETWORKS_FILE in its environment):
 *
 * - 200 ETH withdrawals requested at once from 50 wallets (4 each) through the API → every one
 *   completed; the payouts' nonces are contiguous from the hot wallet's first nonce (no gap, no
 *   duplicate) and the chain's nonce moved by exactly 200; each recipient holds exactly its amount
 *   (paid once); ledger and chain agree: the completed withdrawals' sum is what the recipients
 *   received and what the ledger posted out of the wallets (one withdrawal journal each), and the
 *   hot wallet's balance fell by exactly that sum plus the gas recorded on the rows (`fee_wei`),
 *   which the ledger booked once per payout (a `network_fee` journal).
 * - A network whose first RPC URLs are dead (a port nothing listens on, then one that drops every
 *   connection) pays through the next URL, and nothing else is sent twice.
 */
const WALLETS = 50;
const PER_WALLET = 4;
const PAYOUTS = WALLETS * PER_WALLET;
const FUNDING_WEI = 10n ** 18n;
/**
 * The worker is kicked and the database read at most this long for the payouts to complete. It pays
 * one payout at a time: 200 take about 8 s on a quiet 2-core machine, 20 s or more when it is busy.
 */
const SETTLE_TIMEOUT_MS = 45_000;
const POLL_MS = 100;

let anvil: Anvil;
let t: TestNode;
/** Drops every connection it accepts (a node that is "up" but never answers); counts them. */
let dropping: TCPSocketListener<undefined>;
let droppedConnections = 0;
const ethereumHot = anvilAccount(1);
const baseHot = anvilAccount(2);

beforeAll(async () => {
  anvil = await startAnvil({ chainId: 31337 }); // automine
  const refusedUrl = `http://127.0.0.1:${freePort()}`; // nothing listens there
  dropping = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        droppedConnections++;
        socket.end();
      },
      data() {},
    },
  });
  const droppingUrl = `http://127.0.0.1:${dropping.port}`;
  const network = { kind: "evm", chainId: 31337, assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 1 };
  const networksFile = join(testDir("evm-load"), "networks.json");
  await Bun.write(networksFile, JSON.stringify({ ethereum: { ...network, rpcUrls: [anvil.url] }, base: { ...network, rpcUrls: [refusedUrl, droppingUrl, anvil.url] } }));
  t = await startTestNode("evm-load", { COFFER_TEST_STRIPE: "off", NETWORKS_FILE: networksFile });
  const worker = t.node.chainPayouts;
  if (!worker) throw new Error("the node started without its chain payout worker: NETWORKS_FILE was not read");
  expect(await worker.hotWallets.import("ethereum", ethereumHot.privateKey)).toBe(ethereumHot.address);
  expect(await worker.hotWallets.import("base", baseHot.privateKey)).toBe(baseHot.address);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  dropping?.stop(true);
  await anvil?.stop();
});

const balance = async (address: string) => BigInt(await anvil.rpc<string>("eth_getBalance", [address, "latest"]));
const chainNonce = async (address: string) => BigInt(await anvil.rpc<string>("eth_getTransactionCount", [address, "latest"]));

interface Planned {
  wallet: string;
  network: string;
  to: string;
  wei: bigint;
}

interface PayoutRow {
  withdrawal_id: string;
  status: string;
  from_address: string;
  nonce: string | null;
  tx_hash: string | null;
  fee_wei: string | null;
  /** Transactions signed for the payout (its fee replacements and re-signings included). */
  signed: number;
  last_error: string | null;
}

async function payoutRows(ids: string[]): Promise<PayoutRow[]> {
  return (await t.node.db`select withdrawal_id::text, status, from_address, nonce::text, tx_hash, fee_wei::text,
      jsonb_array_length(attempts)::int as signed, last_error
    from chain_payouts p where withdrawal_id = any(${ids}::uuid[]) order by p.nonce nulls last`) as unknown as PayoutRow[];
}

async function statusCounts(ids: string[]): Promise<Record<string, number>> {
  const rows = await t.node.db`select status, count(*)::int as n from withdrawals where id = any(${ids}::uuid[]) group by status`;
  return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
}

/** Every withdrawal request at once; each must be accepted. Returns the withdrawal ids, in plan order. */
async function requestAll(planned: Planned[]): Promise<string[]> {
  const answers = await Promise.all(
    planned.map((p) => t.api("POST", `/v1/wallets/${p.wallet}/withdrawals`, { amount: formatEther(p.wei), destination: { type: "crypto", network: p.network, address: p.to } })),
  );
  const refused = answers.filter((a) => a.status !== 201);
  expect(refused.map((a) => `${a.status} ${JSON.stringify(a.body)}`)).toEqual([]);
  return answers.map((a) => a.body.id as string);
}

/**
 * Kick the node's own worker and read the database until every withdrawal and its payout completed
 * (the wallet completes the withdrawal first, then the row says so), a bounded number of times.
 */
async function untilCompleted(ids: string[]): Promise<void> {
  const payoutsCompleted = async () => (await t.node.db`select count(*)::int as n from chain_payouts where withdrawal_id = any(${ids}::uuid[]) and status = 'completed'`)[0]!.n as number;
  for (let attempt = 0; attempt * POLL_MS < SETTLE_TIMEOUT_MS; attempt++) {
    if ((await statusCounts(ids)).completed === ids.length && (await payoutsCompleted()) === ids.length) return;
    t.node.chainPayouts!.kick();
    await Bun.sleep(POLL_MS);
  }
  const rows = await payoutRows(ids);
  const payoutStatuses: Record<string, number> = {};
  for (const r of rows) payoutStatuses[r.status] = (payoutStatuses[r.status] ?? 0) + 1;
  throw new Error(
    `timed out after ${SETTLE_TIMEOUT_MS} ms waiting for ${ids.length} withdrawals to complete: withdrawals ${JSON.stringify(await statusCounts(ids))}, ` +
      `chain payouts ${JSON.stringify(payoutStatuses)} (${ids.length - rows.length} without a row)`,
  );
}

describe("EVM payouts under load (real node, real Anvil, automine)", () => {
  test(`${PAYOUTS} payouts requested at once from ${WALLETS} wallets: contiguous nonces, each recipient paid once, ledger and chain agree`, async () => {
    const wallets: string[] = Array(WALLETS);
    await forEachBounded(Array.from({ length: WALLETS }, (_, i) => i), 10, async (i) => {
      wallets[i] = await fundedWallet(t.api, "ETH", formatEther(FUNDING_WEI), `evm-load-${i}`);
    });
    // Distinct amounts (a recipient paid twice would hold twice its own), 0.001 ETH and a little more.
    const planned: Planned[] = Array.from({ length: PAYOUTS }, (_, i) => ({
      wallet: wallets[i % WALLETS]!,
      network: "ethereum",
      to: Wallet.createRandom().address,
      wei: 1_000_000_000_000_000n + BigInt(i) * 1_000_000_000_000n + BigInt(i + 1),
    }));
    const total = planned.reduce((sum, p) => sum + p.wei, 0n);
    const hotBefore = await balance(ethereumHot.address);
    const firstNonce = await chainNonce(ethereumHot.address);

    const ids = await requestAll(planned);
    expect(new Set(ids).size).toBe(PAYOUTS);
    await untilCompleted(ids);

    // Nonces: contiguous from the hot wallet's first, no gap, no duplicate; nothing else was sent.
    const rows = await payoutRows(ids);
    expect(rows.length).toBe(PAYOUTS);
    expect(rows.filter((r) => r.status !== "completed")).toEqual([]);
    expect(new Set(rows.map((r) => r.from_address.toLowerCase()))).toEqual(new Set([ethereumHot.address.toLowerCase()]));
    expect(rows.map((r) => BigInt(r.nonce!))).toEqual(Array.from({ length: PAYOUTS }, (_, i) => firstNonce + BigInt(i)));
    expect(new Set(rows.map((r) => r.tx_hash)).size).toBe(PAYOUTS);
    // Each payout was signed once: no nonce was handed out twice (and healed afterwards as drift), nothing replaced, no alert.
    expect(rows.filter((r) => r.signed !== 1 || r.last_error !== null).map((r) => ({ withdrawal: r.withdrawal_id, signed: r.signed, lastError: r.last_error }))).toEqual([]);
    const alerts = await t.api("GET", "/admin/alerts?limit=50");
    expect(alerts.status).toBe(200);
    expect(alerts.body.items.map((a: { rule: string; facts?: unknown }) => ({ rule: a.rule, facts: a.facts }))).toEqual([]);
    expect(await chainNonce(ethereumHot.address)).toBe(firstNonce + BigInt(PAYOUTS));

    // Each row's hash is the transaction mined at its nonce; each recipient holds exactly its amount.
    const byId = new Map(rows.map((r) => [r.withdrawal_id, r]));
    const wrong: unknown[] = [];
    await forEachBounded(planned, 16, async (p, i) => {
      const row = byId.get(ids[i]!)!;
      const [tx, receipt, received] = await Promise.all([
        anvil.rpc<{ from: string; to: string; nonce: string; value: string } | null>("eth_getTransactionByHash", [row.tx_hash]),
        anvil.rpc<{ status: string } | null>("eth_getTransactionReceipt", [row.tx_hash]),
        balance(p.to),
      ]);
      const seen = { from: tx?.from.toLowerCase(), to: tx?.to.toLowerCase(), nonce: tx && BigInt(tx.nonce), value: tx && BigInt(tx.value), mined: receipt?.status, received };
      const want = { from: ethereumHot.address.toLowerCase(), to: p.to.toLowerCase(), nonce: BigInt(row.nonce!), value: p.wei, mined: "0x1", received: p.wei };
      if (!Bun.deepEquals(seen, want)) wrong.push({ withdrawal: ids[i], seen, want });
    });
    expect(wrong).toEqual([]);

    // Ledger and chain agree.
    const [completed] = await t.node.db`select coalesce(sum(amount), 0)::text as sum from withdrawals where id = any(${ids}::uuid[]) and status = 'completed'`;
    expect(BigInt(completed!.sum as string)).toBe(total);
    const received = (await Promise.all(planned.map((p) => balance(p.to)))).reduce((sum, b) => sum + b, 0n);
    expect(received).toBe(total);
    const fees = rows.map((r) => (r.fee_wei === null ? -1n : BigInt(r.fee_wei)));
    expect(fees.filter((f) => f <= 0n)).toEqual([]);
    const gas = fees.reduce((sum, f) => sum + f, 0n);
    expect(hotBefore - (await balance(ethereumHot.address))).toBe(total + gas);
    // The gas is in the ledger as well: one network_fee journal per payout, for exactly the fee on its row.
    const feeJournals = await t.node.db`select j.source_id::text as withdrawal, count(distinct j.id)::int as journals,
        coalesce(sum(p.amount) filter (where p.amount > 0), 0)::text as fee
      from journals j join postings p on p.journal_id = j.id
      where j.kind = 'network_fee' and j.source_id = any(${ids}::uuid[]) group by j.source_id`;
    expect(feeJournals.length).toBe(PAYOUTS);
    const feeOf = new Map(rows.map((r) => [r.withdrawal_id, BigInt(r.fee_wei!)]));
    expect(feeJournals.filter((j) => j.journals !== 1 || BigInt(j.fee as string) !== feeOf.get(j.withdrawal as string))).toEqual([]);
    // The ledger posted each withdrawal once, out of its wallet, and nothing is held any more.
    const journals = await t.node.db`select j.source_id::text as withdrawal, count(distinct j.id)::int as journals,
        coalesce(sum(p.amount) filter (where p.account = j.wallet_id::text), 0)::text as wallet_side
      from journals j join postings p on p.journal_id = j.id
      where j.kind = 'withdrawal' and j.source_id = any(${ids}::uuid[]) group by j.source_id`;
    expect(journals.length).toBe(PAYOUTS);
    const amountOf = new Map(planned.map((p, i) => [ids[i]!, p.wei]));
    expect(journals.filter((j) => j.journals !== 1 || BigInt(j.wallet_side as string) !== -amountOf.get(j.withdrawal as string)!)).toEqual([]);
    const [sums] = await t.node.db`select coalesce(sum(posted), 0)::text as posted, coalesce(sum(held), 0)::text as held from wallets where id = any(${wallets}::uuid[])`;
    expect({ posted: BigInt(sums!.posted as string), held: BigInt(sums!.held as string) }).toEqual({ posted: FUNDING_WEI * BigInt(WALLETS) - total, held: 0n });
    expect((await t.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
  }, 90_000);

  test("the first RPC URLs dead (refused, then dropping every connection): the next one is used, each payout sent once", async () => {
    const wallet = await fundedWallet(t.api, "ETH", "1", "evm-load-fallback");
    const planned: Planned[] = Array.from({ length: 3 }, (_, i) => ({ wallet, network: "base", to: Wallet.createRandom().address, wei: 20_000_000_000_000_000n + BigInt(i + 1) }));
    const firstNonce = await chainNonce(baseHot.address);
    const droppedBefore = droppedConnections;

    const ids = await requestAll(planned);
    await untilCompleted(ids);

    // The dead URLs were tried (the dropping one is second: the refused one before it was passed over) and the payouts went through the third.
    expect(droppedConnections).toBeGreaterThan(droppedBefore);
    const rows = await payoutRows(ids);
    expect(rows.map((r) => [r.status, r.from_address.toLowerCase()])).toEqual(Array(3).fill(["completed", baseHot.address.toLowerCase()]));
    expect(rows.map((r) => BigInt(r.nonce!))).toEqual([firstNonce, firstNonce + 1n, firstNonce + 2n]);
    expect(await chainNonce(baseHot.address)).toBe(firstNonce + 3n);
    for (const p of planned) expect({ to: p.to, received: await balance(p.to) }).toEqual({ to: p.to, received: p.wei });
  });
});
