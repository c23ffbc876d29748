import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Wallet } from "ethers";
import { evmNetworks, parseNetworks, type EvmNetwork } from "../../src/integrations/chain/config";
import { EvmPayouts } from "../../src/integrations/evm/payouts";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { loadConfig } from "../../src/config";
import { fundedWallet, startTestNode, testNodeEnv, type TestNode } from "../support/node";
import { only, setRules, settle } from "../monitoring/support";

/**
 * Chain payouts on a real Anvil and a real node: ETH withdrawals to crypto destinations on a
 * configured EVM network are signed, stored, broadcast, tracked to N confirmations and completed
 * once; a crash between storing and broadcasting re-sends the same bytes; a reorg re-sends them
 * too; nonces are consecutive; an RPC that is down fails nothing.
 */
const CONFIRMATIONS = 3;
let anvil: Anvil;
let t: TestNode;
/** The network as NETWORKS_FILE would give it (JSON). */
let ethereum: Record<string, unknown>;
let networks: Record<string, EvmNetwork>;
let payouts: EvmPayouts;
const hot = anvilAccount(0);

beforeAll(async () => {
  anvil = await startAnvil({ chainId: 31337 });
  t = await startTestNode("evm-payouts", { COFFER_TEST_STRIPE: "off" });
  ethereum = { kind: "evm", chainId: 31337, rpcUrls: [anvil.url], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: CONFIRMATIONS };
  networks = evmNetworks(parseNetworks({ ethereum }));
  payouts = new EvmPayouts(t.node.db, t.node.ops, t.node.vault, networks, 3_600_000);
  expect(await payouts.hotWallets.import("ethereum", hot.privateKey)).toBe(hot.address);
}, 60_000);
afterAll(async () => {
  await payouts?.stop();
  await t?.stop();
  await anvil?.stop();
});

const balance = async (address: string) => BigInt(await anvil.rpc<string>("eth_getBalance", [address, "latest"]));
const chainNonce = async (tag = "latest") => BigInt(await anvil.rpc<string>("eth_getTransactionCount", [hot.address, tag]));

async function requestWithdrawal(amount: string): Promise<{ wallet: string; withdrawalId: string; to: string }> {
  const wallet = await fundedWallet(t.api, "ETH", "10");
  const to = Wallet.createRandom().address;
  const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination: { type: "crypto", network: "ethereum", address: to } });
  expect(res.status).toBe(201);
  return { wallet, withdrawalId: res.body.id, to };
}

async function withdrawalStatus(id: string): Promise<string> {
  const [row] = await t.node.db`select status from withdrawals where id = ${id}`;
  return row!.status as string;
}

describe("EVM payouts (native ETH, Anvil)", () => {
  test("a withdrawal is paid once and completes after N confirmations", async () => {
    const { wallet, withdrawalId, to } = await requestWithdrawal("0.5");
    expect(await payouts.step(withdrawalId)).toBe("wait");
    const p = (await payouts.row(withdrawalId))!;
    expect(p.status).toBe("broadcast");
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    expect(await balance(to)).toBe(500_000_000_000_000_000n);
    await anvil.mine(CONFIRMATIONS - 2);
    expect(await payouts.step(withdrawalId)).toBe("wait");
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    await anvil.mine(1);
    expect(await payouts.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect((await payouts.row(withdrawalId))!.status).toBe("completed");
    const [fee] = await t.node.db`select fee_wei::text as fee from chain_payouts where withdrawal_id = ${withdrawalId}`;
    expect(BigInt(fee!.fee as string)).toBeGreaterThan(0n);
    // Steps again change nothing: paid once.
    await payouts.pass();
    expect(await balance(to)).toBe(500_000_000_000_000_000n);
    const view = await t.api("GET", `/v1/wallets/${wallet}`);
    expect(view.body.balance.held).toBe("0.000000000000000000");
    // The hold is posted out to the chain payouts account, once.
    const postings = await t.node.db`select p.account, p.amount::text as amount from postings p join journals j on j.id = p.journal_id
      where j.wallet_id = ${wallet} and j.kind = 'withdrawal'`;
    expect(postings.map((r) => [r.account, r.amount]).sort()).toEqual([[wallet, "-500000000000000000"], ["system:chain_payouts", "500000000000000000"]].sort());
  }, 30_000);

  test("a crash after storing the signed transaction: the same bytes are broadcast after restart", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.25");
    expect(await payouts.claim(withdrawalId)).toBe("done");
    expect(await payouts.sign((await payouts.row(withdrawalId))!)).toBe("done");
    const signed = (await payouts.row(withdrawalId))!;
    expect(signed.status).toBe("signed");
    const nonceBefore = await chainNonce();
    // "Crash": the process dies here. A new one takes over from the stored row.
    const restarted = new EvmPayouts(t.node.db, t.node.ops, t.node.vault, networks, 3_600_000);
    await restarted.step(withdrawalId);
    const after = (await restarted.row(withdrawalId))!;
    expect(after.tx_hash).toBe(signed.tx_hash);
    expect(after.nonce).toBe(signed.nonce);
    expect(after.raw_tx).toBe(signed.raw_tx);
    expect(await chainNonce()).toBe(nonceBefore + 1n);
    const receipt = await anvil.rpc<{ status: string } | null>("eth_getTransactionReceipt", [signed.tx_hash]);
    expect(receipt?.status).toBe("0x1");
    await anvil.mine(CONFIRMATIONS);
    await restarted.step(withdrawalId);
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(await balance(to)).toBe(250_000_000_000_000_000n);
    await restarted.stop();
  }, 30_000);

  test("a reorg: the payout goes back to broadcast, the same raw tx is re-sent and completes once", async () => {
    const { withdrawalId, to } = await requestWithdrawal("0.125");
    await payouts.claim(withdrawalId);
    await payouts.sign((await payouts.row(withdrawalId))!);
    const snapshot = await anvil.rpc<string>("evm_snapshot");
    await payouts.step(withdrawalId); // broadcast (mined at once) and tracked
    const mined = (await payouts.row(withdrawalId))!;
    expect(mined.status).toBe("broadcast");
    expect(mined.block_hash).toBeTruthy();
    await anvil.mine(1);
    expect(await anvil.rpc<boolean>("evm_revert", [snapshot])).toBe(true);
    expect(await anvil.rpc("eth_getTransactionReceipt", [mined.tx_hash])).toBeNull();
    expect(await balance(to)).toBe(0n);
    await payouts.step(withdrawalId); // the receipt is gone: the same bytes go out again
    const again = (await payouts.row(withdrawalId))!;
    expect(again.status).toBe("broadcast");
    expect(again.tx_hash).toBe(mined.tx_hash);
    expect(await anvil.rpc("eth_getTransactionReceipt", [mined.tx_hash])).not.toBeNull();
    await anvil.mine(CONFIRMATIONS);
    expect(await payouts.step(withdrawalId)).toBe("done");
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(await balance(to)).toBe(125_000_000_000_000_000n);
    await payouts.pass();
    expect(await balance(to)).toBe(125_000_000_000_000_000n);
  }, 30_000);

  test("two payouts in one pass get consecutive nonces (signed side by side, in either order)", async () => {
    const a = await requestWithdrawal("0.01");
    const b = await requestWithdrawal("0.02");
    await payouts.pass();
    const [ra, rb] = [(await payouts.row(a.withdrawalId))!, (await payouts.row(b.withdrawalId))!];
    const [low, high] = [BigInt(ra.nonce!), BigInt(rb.nonce!)].sort((x, y) => (x < y ? -1 : 1));
    expect(high).toBe(low! + 1n);
    await anvil.mine(CONFIRMATIONS);
    await payouts.pass();
    expect(await withdrawalStatus(a.withdrawalId)).toBe("completed");
    expect(await withdrawalStatus(b.withdrawalId)).toBe("completed");
    expect(await balance(a.to)).toBe(10_000_000_000_000_000n);
    expect(await balance(b.to)).toBe(20_000_000_000_000_000n);
  }, 30_000);

  test("an RPC that is down: nothing fails, and the payout goes through once it answers", async () => {
    const dead = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const deadUrl = `http://127.0.0.1:${dead.port}`;
    await dead.stop(true);
    const down = new EvmPayouts(t.node.db, t.node.ops, t.node.vault, evmNetworks(parseNetworks({ ethereum: { ...ethereum, rpcUrls: [deadUrl] } })), 3_600_000);
    const { withdrawalId, to } = await requestWithdrawal("0.03");
    expect(await down.step(withdrawalId)).toBe("retry");
    expect(await down.step(withdrawalId)).toBe("retry");
    expect((await down.row(withdrawalId))!.status).toBe("claimed");
    expect(await withdrawalStatus(withdrawalId)).toBe("processing");
    await payouts.step(withdrawalId);
    await anvil.mine(CONFIRMATIONS);
    await payouts.step(withdrawalId);
    expect(await withdrawalStatus(withdrawalId)).toBe("completed");
    expect(await balance(to)).toBe(30_000_000_000_000_000n);
    await down.stop();
  }, 30_000);

  test("the hot-wallet CLI imports a key from stdin (never printing it) and shows addresses with balances", async () => {
    const file = `${process.env.TMPDIR ?? "/tmp"}/coffer-networks-${crypto.randomUUID()}.json`;
    await Bun.write(file, JSON.stringify({ ethereum }));
    const env = { ...process.env, DATABASE_URL: t.db.url, NETWORKS_FILE: file, ENCRYPTION_KEYS_FILE: loadConfig(await testNodeEnv()).vaultFile };
    const run = async (args: string[], stdin?: string) => {
      const proc = Bun.spawn(["bun", "src/cli/coffer.ts", "hot-wallet", ...args], { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { out, err, code };
    };
    const imported = await run(["import", "--network", "ethereum"], `${hot.privateKey}\n`);
    expect(imported.code).toBe(0);
    expect(imported.out.trim()).toBe(`ethereum: ${hot.address}`);
    expect(imported.out + imported.err).not.toContain(hot.privateKey.slice(2, 18));
    const [row] = await t.node.db`select sealed_key::text as sealed from hot_wallets where network = 'ethereum'`;
    expect(row!.sealed as string).not.toContain(hot.privateKey.slice(2, 18));
    const shown = await run(["show"]);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`ethereum: ${hot.address} `);
    expect(shown.out).toMatch(/\d+ wei/);
    const refused = await run(["import", "--network", "nowhere"], "0x01\n");
    expect(refused.code).toBe(2);
  }, 60_000);
});

describe("with monitoring on", () => {
  test("a new ETH withdrawal is claimed only after monitoring read it: a hold parks it before anything is signed, a release lets it go", async () => {
    const gated = new EvmPayouts(t.node.db, t.node.ops, t.node.vault, networks, 3_600_000, true);
    await setRules(t, only({ newDestination: { outcome: "hold" } }));
    const { withdrawalId } = await requestWithdrawal("0.25");
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
  });
});
