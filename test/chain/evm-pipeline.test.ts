import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Transaction, Wallet } from "ethers";
import { evmNetworks, parseNetworks, type EvmNetwork } from "../../src/integrations/chain/config";
import { ChainLimits } from "../../src/integrations/chain/limits";
import { EvmPayouts, type StepResult } from "../../src/integrations/evm/payouts";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { deployErc20, erc20BalanceOf, sendTransaction } from "../support/erc20";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * The EVM payout pipeline past the first slice, on real Anvils and a real node: USDC as a real
 * ERC-20, gas booked in the ledger, fee replacement when the base fee rises under a pending payout
 * (never "replacement underpriced"), the fee cap parking a payout, an operator's cancellation by a
 * 0-value self-send at the payout's nonce, runway (paused, nothing failed, resumed when topped up),
 * nonce drift from a foreign transaction (reported and healed, paid once), one signer per hot
 * wallet, dead letters, and request-time limits at their exact boundaries.
 *
 * Two chains: `ethereum` mines every transaction as it arrives; `base` mines only when told, so a
 * payout can stay pending while the test moves fees and blocks.
 */
const hot = anvilAccount(0);
let auto: Anvil;
let manual: Anvil;
let t: TestNode;
let usdc: string;
let raw: Record<string, Record<string, unknown>>;
let networks: Record<string, EvmNetwork>;
let payouts: EvmPayouts;
const extra: EvmPayouts[] = [];

beforeAll(async () => {
  [auto, manual] = await Promise.all([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31338, automine: false })]);
  usdc = await deployErc20(auto, { mintTo: hot.address, mintAmount: 1_000_000_000n }); // 1,000 USDC
  t = await startTestNode("evm-pipeline", { COFFER_TEST_STRIPE: "off" });
  raw = {
    ethereum: {
      kind: "evm",
      chainId: 31337,
      rpcUrls: [auto.url],
      assets: { ETH: { native: true }, USDC: { contract: usdc } },
      feeModel: "eip1559",
      confirmations: 1,
    },
    base: {
      kind: "evm",
      chainId: 31338,
      rpcUrls: [manual.url],
      assets: { ETH: { native: true } },
      feeModel: "eip1559",
      confirmations: 1,
      fees: { replaceAfterBlocks: 2, maxFeePerGasCapWei: "1000000000000" },
    },
  };
  networks = evmNetworks(parseNetworks(raw));
  payouts = worker();
  await payouts.hotWallets.import("ethereum", hot.privateKey);
  await payouts.hotWallets.import("base", hot.privateKey);
}, 60_000);

afterAll(async () => {
  for (const w of [payouts, ...extra]) await w?.stop();
  await t?.stop();
  await Promise.all([auto?.stop(), manual?.stop()]);
});

function worker(overrides: Record<string, Partial<Record<string, unknown>>> = {}, options: ConstructorParameters<typeof EvmPayouts>[6] = {}): EvmPayouts {
  const config = Object.keys(overrides).length ? evmNetworks(parseNetworks(Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, { ...v, ...overrides[k] }])))) : networks;
  const w = new EvmPayouts(t.node.db, t.node.ops, t.node.vault, config, 3_600_000, false, options);
  if (Object.keys(overrides).length || Object.keys(options).length) extra.push(w);
  return w;
}

const ethBalance = async (chain: Anvil, address: string) => BigInt(await chain.rpc<string>("eth_getBalance", [address, "latest"]));

async function request(network: string, asset: "ETH" | "USDC", amount: string, funding = "10"): Promise<{ wallet: string; withdrawalId: string; to: string }> {
  const wallet = await fundedWallet(t.api, asset, funding);
  const to = Wallet.createRandom().address;
  const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination: { type: "crypto", network, address: to } });
  expect(res.status).toBe(201);
  return { wallet, withdrawalId: res.body.id, to };
}

async function withdrawalStatus(id: string): Promise<string> {
  const [row] = await t.node.db`select status from withdrawals where id = ${id}`;
  return row!.status as string;
}

async function payoutRow(id: string) {
  const [row] = await t.node.db`select status, parked_from, last_error, nonce::text as nonce, tx_hash, jsonb_array_length(attempts) as attempts,
      replacements, fee_wei::text as fee_wei, fee_journal_id from chain_payouts where withdrawal_id = ${id}`;
  return row!;
}

/** Steps until the payout stops moving (a bounded number of times: each step is one look at the chain). */
async function stepUntil(w: EvmPayouts, id: string, done: (status: string) => boolean, tries = 10): Promise<StepResult> {
  let last: StepResult = "wait";
  for (let i = 0; i < tries; i++) {
    last = await w.step(id);
    if (done((await payoutRow(id)).status as string)) return last;
  }
  return last;
}

describe("USDC as an ERC-20", () => {
  test("a USDC withdrawal is a token transfer from the hot wallet: paid once, the Transfer checked, gas booked in ETH", async () => {
    const before = await erc20BalanceOf(auto, usdc, hot.address);
    const { withdrawalId, to } = await request("ethereum", "USDC", "12.5", "100");
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(await erc20BalanceOf(auto, usdc, to)).toBe(12_500_000n);
    expect(await erc20BalanceOf(auto, usdc, hot.address)).toBe(before - 12_500_000n);
    expect(await ethBalance(auto, to)).toBe(0n);
    const row = await payoutRow(withdrawalId);
    const tx = Transaction.from((await t.node.db`select raw_tx from chain_payouts where withdrawal_id = ${withdrawalId}`)[0]!.raw_tx as string);
    expect(tx.to).toBe(usdc);
    expect(tx.value).toBe(0n);
    // The gas, in ETH, from the hot wallet's ledger account to the network's fees: once.
    const postings = await t.node.db`select account, asset, amount::text as amount from postings where journal_id = ${row.fee_journal_id as string} order by account`;
    expect(postings.map((p) => [p.account, p.asset, p.amount])).toEqual([
      ["system:hot_wallets:ethereum", "ETH", `-${row.fee_wei}`],
      ["system:network_fees:ethereum", "ETH", row.fee_wei as string],
    ]);
    await payouts.step(withdrawalId);
    expect(await erc20BalanceOf(auto, usdc, to)).toBe(12_500_000n);
  }, 30_000);

  test("every wei that left the hot wallet for ETH payouts is explained by the ledger: payouts plus network fees", async () => {
    const start = await ethBalance(auto, hot.address);
    const asked = ["0.1", "0.2", "0.3"];
    const ids: string[] = [];
    for (const amount of asked) ids.push((await request("ethereum", "ETH", amount)).withdrawalId);
    for (const id of ids) await stepUntil(payouts, id, (s) => s === "completed");
    const spent = start - (await ethBalance(auto, hot.address));
    const [ledger] = await t.node.db`select
        coalesce(sum(p.amount) filter (where p.account = 'system:chain_payouts'), 0)::text as paid,
        coalesce(sum(p.amount) filter (where p.account = 'system:network_fees:ethereum'), 0)::text as fees
      from postings p join journals j on j.id = p.journal_id
      where j.source_id = any(${t.node.db.array(ids)}::uuid[])`;
    expect(BigInt(ledger!.paid as string)).toBe(600_000_000_000_000_000n);
    expect(BigInt(ledger!.paid as string) + BigInt(ledger!.fees as string)).toBe(spent);
    expect((await t.api("GET", "/admin/verify")).body.ok).toBe(true);
  }, 30_000);
});

describe("a flat withdrawal fee", () => {
  test("kept from what is sent: the recipient gets the amount less the fee, the wallet gives the amount, the fee goes to system:withdrawal_fees", async () => {
    const charging = worker({ ethereum: { assets: { ETH: { native: true, withdrawalFeeMinor: "1000000000000000" } } } }); // 0.001 ETH
    const { wallet, withdrawalId, to } = await request("ethereum", "ETH", "0.1");
    await stepUntil(charging, withdrawalId, (s) => s === "completed");
    expect(await ethBalance(auto, to)).toBe(99_000_000_000_000_000n);
    // Per account: the journal is stored as two movements (wallet → chain payouts, wallet → fees).
    const postings = await t.node.db`select p.account, sum(p.amount)::text as amount from postings p join journals j on j.id = p.journal_id
      where j.source_id = ${withdrawalId} and j.kind = 'withdrawal' group by p.account order by p.account`;
    expect(postings.map((p) => [p.account, p.amount])).toEqual([
      [wallet, "-100000000000000000"],
      ["system:chain_payouts", "99000000000000000"],
      ["system:withdrawal_fees", "1000000000000000"],
    ]);
    expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.available).toBe("9.900000000000000000");
    expect((await t.api("GET", "/admin/verify")).body.ok).toBe(true);
  }, 30_000);

  test("a withdrawal not above the fee is refused when requested (422 LIMIT_EXCEEDED), nothing held", async () => {
    const withFee = parseNetworks({ ...raw, ethereum: { ...raw.ethereum, assets: { ETH: { native: true, withdrawalFeeMinor: "1000000000000000" } } } });
    t.node.ops.useChainLimits(new ChainLimits(t.node.db, withFee));
    try {
      const wallet = await fundedWallet(t.api, "ETH", "1");
      const at = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.001", destination: { type: "crypto", network: "ethereum", address: Wallet.createRandom().address } });
      expect([at.status, at.body.code]).toEqual([422, "LIMIT_EXCEEDED"]);
      expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.held).toBe("0.000000000000000000");
      const above = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.001000000000000001", destination: { type: "crypto", network: "ethereum", address: Wallet.createRandom().address } });
      expect(above.status).toBe(201);
      await t.api("POST", `/v1/withdrawals/${above.body.id}/cancel`, {});
    } finally {
      t.node.ops.useChainLimits(new ChainLimits(t.node.db, parseNetworks(raw)));
    }
  });
});

describe("fees", () => {
  test("the base fee rises under a pending payout: replaced at the same nonce with higher fees (never underpriced), paid once", async () => {
    const { withdrawalId, to } = await request("base", "ETH", "0.5");
    await stepUntil(payouts, withdrawalId, (s) => s === "broadcast");
    const first = await payoutRow(withdrawalId);
    expect(first.attempts).toBe(1);
    // The next block's base fee far above what the payout offers: it cannot be mined.
    const offered = Transaction.from((await t.node.db`select raw_tx from chain_payouts where withdrawal_id = ${withdrawalId}`)[0]!.raw_tx as string).maxFeePerGas!;
    await manual.rpc("anvil_setNextBlockBaseFeePerGas", [`0x${(offered * 4n).toString(16)}`]);
    await manual.mine(2);
    expect(await manual.rpc("eth_getTransactionReceipt", [first.tx_hash])).toBeNull();
    // Two blocks without it: replaced (the node accepts it: a refusal would be a counted stage failure).
    expect(await payouts.step(withdrawalId)).not.toBe("retry");
    const replaced = await payoutRow(withdrawalId);
    expect(replaced.attempts).toBe(2);
    expect(replaced.replacements).toBe(1);
    expect(replaced.nonce).toBe(first.nonce);
    expect(replaced.tx_hash).not.toBe(first.tx_hash);
    expect(replaced.last_error).toBeNull();
    const newer = Transaction.from((await t.node.db`select raw_tx from chain_payouts where withdrawal_id = ${withdrawalId}`)[0]!.raw_tx as string);
    expect(newer.maxFeePerGas! >= (offered * 110n) / 100n + 1n).toBe(true);
    await manual.mine(1);
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(await ethBalance(manual, to)).toBe(500_000_000_000_000_000n);
    expect((await payoutRow(withdrawalId)).tx_hash).toBe(replaced.tx_hash);
  }, 30_000);

  test("past the network's fee cap a pending payout parks for an operator: nothing fails, the hold stays", async () => {
    const capped = worker({ base: { fees: { replaceAfterBlocks: 1, maxFeePerGasCapWei: "1" } } });
    const { withdrawalId } = await request("base", "ETH", "0.25");
    await stepUntil(payouts, withdrawalId, (s) => s === "broadcast");
    const offered = Transaction.from((await t.node.db`select raw_tx from chain_payouts where withdrawal_id = ${withdrawalId}`)[0]!.raw_tx as string).maxFeePerGas!;
    await manual.rpc("anvil_setNextBlockBaseFeePerGas", [`0x${(offered * 4n).toString(16)}`]);
    await manual.mine(1);
    await capped.step(withdrawalId);
    const row = await payoutRow(withdrawalId);
    expect(row.status).toBe("parked");
    expect(row.parked_from).toBe("broadcast");
    expect(row.last_error as string).toContain("fee_cap_reached");
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    // An operator's replace goes past the cap once: it is mined, and completes.
    await t.node.db`update chain_payouts set operator_action = 'replace' where withdrawal_id = ${withdrawalId}`;
    await payouts.step(withdrawalId);
    expect((await payoutRow(withdrawalId)).attempts).toBe(2);
    await manual.mine(1);
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
  }, 30_000);

  test("an operator's cancel of a pending payout: a 0-value self-send takes its nonce; once final the withdrawal fails and its hold is released", async () => {
    const { wallet, withdrawalId, to } = await request("base", "ETH", "0.75");
    await stepUntil(payouts, withdrawalId, (s) => s === "broadcast");
    const nonce = (await payoutRow(withdrawalId)).nonce;
    await t.node.db`update chain_payouts set operator_action = 'cancel' where withdrawal_id = ${withdrawalId}`;
    await payouts.step(withdrawalId);
    const cancelling = await payoutRow(withdrawalId);
    expect(cancelling.status).toBe("cancelling");
    const cancel = Transaction.from((await t.node.db`select raw_tx from chain_payouts where withdrawal_id = ${withdrawalId}`)[0]!.raw_tx as string);
    expect([cancel.to, cancel.value, String(cancel.nonce)]).toEqual([hot.address, 0n, nonce]);
    // Still processing until the cancellation is mined: the payout itself could still win.
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    await manual.mine(1);
    await stepUntil(payouts, withdrawalId, (s) => s === "cancelled");
    expect(await withdrawalStatus(withdrawalId)).toBe("failed");
    expect(await ethBalance(manual, to)).toBe(0n);
    const view = await t.api("GET", `/v1/wallets/${wallet}`);
    expect(view.body.balance.held).toBe("0.000000000000000000");
    expect(view.body.balance.available).toBe("10.000000000000000000");
    expect((await payoutRow(withdrawalId)).fee_journal_id).toBeTruthy();
  }, 30_000);
});

describe("runway, drift, the signer lease and dead letters", () => {
  test("a hot wallet short of runway pauses its network: nothing signed, nothing failed, an alert; topped up, it resumes and pays", async () => {
    const saved = await ethBalance(auto, hot.address);
    await auto.rpc("anvil_setBalance", [hot.address, "0x16345785D8A0000"]); // 0.1 ETH
    const { withdrawalId, to } = await request("ethereum", "ETH", "1");
    await payouts.step(withdrawalId);
    const row = await payoutRow(withdrawalId);
    expect(row.status).toBe("claimed");
    expect(row.nonce).toBeNull();
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    const [net] = await t.node.db`select paused, paused_by from chain_networks where network = 'ethereum'`;
    expect([net!.paused, net!.paused_by]).toEqual([true, "runway"]);
    const [alert] = await t.node.db`select severity from monitoring_alerts where rule = 'hot_wallet_runway' and subject_id = 'ethereum'`;
    expect(alert!.severity).toBe("high");
    // A new withdrawal is not even claimed while paused.
    const second = await request("ethereum", "ETH", "0.01");
    await payouts.pass();
    expect((await t.node.db`select 1 from chain_payouts where withdrawal_id = ${second.withdrawalId}`).length).toBe(0);
    await auto.rpc("anvil_setBalance", [hot.address, `0x${saved.toString(16)}`]);
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    expect(await ethBalance(auto, to)).toBe(1_000_000_000_000_000_000n);
    expect((await t.node.db`select paused from chain_networks where network = 'ethereum'`)[0]!.paused).toBe(false);
    await payouts.pass();
    await stepUntil(payouts, second.withdrawalId, (s) => s === "completed");
    expect(await withdrawalStatus(second.withdrawalId)).toBe("completed");
  }, 30_000);

  test("a foreign transaction from the hot wallet: its nonce is reported and skipped; a payout signed for that nonce is signed again and paid once", async () => {
    const { withdrawalId, to } = await request("ethereum", "ETH", "0.2");
    await payouts.claim(withdrawalId);
    await payouts.sign((await payouts.row(withdrawalId))!);
    const signed = (await payouts.row(withdrawalId))!;
    // Someone with the hot wallet's key spends its next nonce before the payout is broadcast.
    await sendTransaction(auto, hot, { to: Wallet.createRandom().address, value: 1n });
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    const after = (await payouts.row(withdrawalId))!;
    expect(BigInt(after.nonce!)).toBe(BigInt(signed.nonce!) + 1n);
    expect(after.tx_hash).not.toBe(signed.tx_hash);
    expect(await ethBalance(auto, to)).toBe(200_000_000_000_000_000n);
    const [alert] = await t.node.db`select facts from monitoring_alerts where rule = 'nonce_drift' and subject_id = 'ethereum'`;
    expect(alert).toBeTruthy();
    // A second foreign transaction before anything is signed: the next payout skips its nonce at once.
    await sendTransaction(auto, hot, { to: Wallet.createRandom().address, value: 1n });
    const next = await request("ethereum", "ETH", "0.01");
    await stepUntil(payouts, next.withdrawalId, (s) => s === "completed");
    expect(BigInt((await payouts.row(next.withdrawalId))!.nonce!)).toBe(BigInt(after.nonce!) + 2n);
    const [net] = await t.node.db`select drift from chain_networks where network = 'ethereum'`;
    expect(net!.drift as string).toContain("did not sign");
  }, 30_000);

  test("a nonce gap the pipeline left (a payout parked before its bytes went out) is filled; the payouts behind it go through, and the parked one, retried, is signed again and paid once", async () => {
    const a = await request("ethereum", "ETH", "0.3");
    const b = await request("ethereum", "ETH", "0.4");
    for (const id of [a.withdrawalId, b.withdrawalId]) {
      await payouts.claim(id);
      await payouts.sign((await payouts.row(id))!);
    }
    const [ra, rb] = [(await payouts.row(a.withdrawalId))!, (await payouts.row(b.withdrawalId))!];
    const [first, second] = BigInt(ra.nonce!) < BigInt(rb.nonce!) ? [a, b] : [b, a];
    const firstNonce = BigInt((await payouts.row(first.withdrawalId))!.nonce!);
    // The first is parked before its bytes went out (what a dead letter does); the second is sent and waits behind the gap.
    await t.node.db`update chain_payouts set status = 'parked', parked_from = 'signed', last_error = 'test: parked before broadcast' where withdrawal_id = ${first.withdrawalId}`;
    await payouts.broadcast((await payouts.row(second.withdrawalId))!);
    expect(await auto.rpc("eth_getTransactionReceipt", [(await payouts.row(second.withdrawalId))!.tx_hash])).toBeNull();
    await payouts.pass(); // sees the gap, fills it: the second is mined behind the filler
    await stepUntil(payouts, second.withdrawalId, (s) => s === "completed");
    expect(await ethBalance(auto, second.to)).toBe(second === a ? 300_000_000_000_000_000n : 400_000_000_000_000_000n);
    const [net] = await t.node.db`select drift from chain_networks where network = 'ethereum'`;
    expect(net!.drift as string).toContain(`nonce ${firstNonce}: a gap the pipeline left`);
    // The operator retries the parked one (what POST /admin/payouts/:id/retry does): its old nonce is
    // taken by the filler, so it is signed again with a new one and paid exactly once.
    await t.node.db`update chain_payouts set status = parked_from, last_error = null where withdrawal_id = ${first.withdrawalId}`;
    await stepUntil(payouts, first.withdrawalId, (s) => s === "completed");
    const healed = (await payouts.row(first.withdrawalId))!;
    expect(BigInt(healed.nonce!)).not.toBe(firstNonce);
    expect(await ethBalance(auto, first.to)).toBe(first === a ? 300_000_000_000_000_000n : 400_000_000_000_000_000n);
  }, 30_000);

  test("an operator's retry racing the worker: one broadcast, one transaction at the payout's nonce, paid once", async () => {
    const { withdrawalId, to } = await request("ethereum", "ETH", "0.15");
    await payouts.claim(withdrawalId);
    await payouts.sign((await payouts.row(withdrawalId))!);
    const signed = (await payouts.row(withdrawalId))!;
    await t.node.db`update chain_payouts set status = 'parked', parked_from = 'signed', last_error = 'test' where withdrawal_id = ${withdrawalId}`;
    const before = BigInt(await auto.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]));
    const other = worker({}, {});
    const [retry] = await Promise.all([
      t.api("POST", `/admin/payouts/${withdrawalId}/retry`, {}),
      payouts.pass(),
      other.pass(),
      payouts.step(withdrawalId),
    ]);
    expect(retry.status).toBe(200);
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    const after = (await payouts.row(withdrawalId))!;
    expect([after.tx_hash, after.nonce, after.attempts.length]).toEqual([signed.tx_hash, signed.nonce, 1]);
    expect(BigInt(await auto.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]))).toBe(before + 1n);
    expect(await ethBalance(auto, to)).toBe(150_000_000_000_000_000n);
  }, 30_000);

  test("one signer per hot wallet: a second node cannot sign while the first holds the lease", async () => {
    const other = worker({}, { holder: "node-b" });
    await payouts.pass(); // node "local" renews its lease on every pass
    const { withdrawalId } = await request("ethereum", "ETH", "0.01");
    await other.claim(withdrawalId);
    expect(await other.sign((await other.row(withdrawalId))!)).toBe("wait");
    expect((await payoutRow(withdrawalId)).status).toBe("claimed");
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
  }, 30_000);

  test("a broadcast the node keeps refusing is retried with backoff, then parked with a dead letter saying why", async () => {
    const strict = worker({}, { stageFailuresMax: 2 });
    const { withdrawalId } = await request("ethereum", "ETH", "0.05");
    await strict.claim(withdrawalId);
    await strict.sign((await strict.row(withdrawalId))!);
    const saved = await ethBalance(auto, hot.address);
    await auto.rpc("anvil_setBalance", [hot.address, "0x0"]);
    try {
      for (let i = 0; i < 2; i++) {
        await t.node.db`update chain_payouts set next_attempt_at = now() where withdrawal_id = ${withdrawalId}`;
        await strict.pass();
      }
    } finally {
      await auto.rpc("anvil_setBalance", [hot.address, `0x${saved.toString(16)}`]);
    }
    const row = await payoutRow(withdrawalId);
    expect([row.status, row.parked_from]).toEqual(["parked", "signed"]);
    const [letter] = await t.node.db`select stage, reason, attempts, status from chain_dlq where withdrawal_id = ${withdrawalId}`;
    expect([letter!.stage, letter!.attempts, letter!.status]).toEqual(["broadcast", 2, "open"]);
    expect(letter!.reason as string).toContain("broadcast refused");
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    // Redriven (what the operator route does): the same bytes go out and it completes.
    await t.node.db`update chain_payouts set status = parked_from, stage_failures = 0 where withdrawal_id = ${withdrawalId}`;
    await stepUntil(payouts, withdrawalId, (s) => s === "completed");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
  }, 30_000);
});

describe("limits when a withdrawal is requested", () => {
  let limited: ChainLimits;
  beforeAll(() => {
    limited = new ChainLimits(
      t.node.db,
      parseNetworks({
        ...raw,
        ethereum: {
          ...raw.ethereum,
          assets: {
            ETH: { native: true, limits: { perPayoutMinMinor: "1000", perPayoutMaxMinor: "3000000000000000000", perWalletPerDayMinor: "4000000000000000000", perNetworkPerDayMinor: "10000000000000000000" } },
          },
        },
      }),
    );
    t.node.ops.useChainLimits(limited);
  });
  afterAll(() => t.node.ops.useChainLimits(new ChainLimits(t.node.db, parseNetworks(raw))));

  const ask = (wallet: string, amount: string, key?: string, address = Wallet.createRandom().address) =>
    t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination: { type: "crypto", network: "ethereum", address } }, key ? { key } : {});

  test("per payout: at the maximum allowed, one wei over 422 LIMIT_EXCEEDED; under the minimum too; nothing held", async () => {
    const wallet = await fundedWallet(t.api, "ETH", "20");
    expect((await ask(wallet, "3.000000000000000001")).body.code).toBe("LIMIT_EXCEEDED");
    expect((await ask(wallet, "0.000000000000000999")).status).toBe(422);
    expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.held).toBe("0.000000000000000000");
    expect((await ask(wallet, "3")).status).toBe(201);
    expect((await ask(wallet, "0.000000000000001")).status).toBe(201);
  });

  test("per wallet per day: exactly at the limit allowed, one wei over refused; a retry under the same key reserves nothing twice", async () => {
    const wallet = await fundedWallet(t.api, "ETH", "20");
    const key = crypto.randomUUID();
    const address = Wallet.createRandom().address;
    expect((await ask(wallet, "2", key, address)).status).toBe(201);
    expect((await ask(wallet, "2", key, address)).status).toBe(201); // the replay
    expect((await ask(wallet, "2.000000000000000001")).status).toBe(422);
    const at = await ask(wallet, "2");
    expect([at.status, at.body.detail]).toEqual([201, undefined]);
    const over = await ask(wallet, "0.000000000000001");
    expect([over.status, over.body.code]).toEqual([422, "LIMIT_EXCEEDED"]);
  });

  test("a processor cannot step a withdrawal Coffer pays on chain itself (409); its owner can still cancel it before it is sent", async () => {
    const wallet = await fundedWallet(t.api, "ETH", "1");
    const asked = await ask(wallet, "0.5");
    expect(asked.status).toBe(201);
    for (const step of ["process", "complete", "fail"]) {
      const res = await t.api("POST", `/v1/withdrawals/${asked.body.id}/${step}`, step === "fail" ? { reason: "no" } : {});
      expect([step, res.status, res.body.code]).toEqual([step, 409, "INVALID_TRANSITION"]);
    }
    expect(await withdrawalStatus(asked.body.id)).toBe("requested");
    expect((await t.api("POST", `/v1/withdrawals/${asked.body.id}/cancel`, {})).status).toBe(200);
    expect(await withdrawalStatus(asked.body.id)).toBe("cancelled");
  });

  test("per network per day, across wallets, with requests racing: never past the limit", async () => {
    // About 7 ETH of today's 10 went to the previous tests' wallets: read what is left.
    const [used] = await t.node.db`select used::text as used from chain_limit_usage where scope = 'network:ethereum:ETH' and day = (now() at time zone 'utc')::date`;
    const left = 10_000_000_000_000_000_000n - (used ? BigInt(used.used as string) : 0n);
    const wallets = await Promise.all(Array.from({ length: 8 }, () => fundedWallet(t.api, "ETH", "5")));
    const amount = left / 4n + 1n; // four of them would be one unit over... together with rounding, at most 3 fit
    const answers = await Promise.all(wallets.map((w) => ask(w, formatWei(amount))));
    const accepted = answers.filter((a) => a.status === 201).length;
    expect(accepted).toBe(3);
    expect(answers.filter((a) => a.status === 422).every((a) => a.body.code === "LIMIT_EXCEEDED")).toBe(true);
    const [after] = await t.node.db`select used::text as used from chain_limit_usage where scope = 'network:ethereum:ETH' and day = (now() at time zone 'utc')::date`;
    expect(BigInt(after!.used as string)).toBeLessThanOrEqual(10_000_000_000_000_000_000n);
    expect(BigInt(after!.used as string)).toBe(10_000_000_000_000_000_000n - left + 3n * amount);
  });
});

function formatWei(wei: bigint): string {
  const s = wei.toString().padStart(19, "0");
  return `${s.slice(0, -18)}.${s.slice(-18)}`;
}
