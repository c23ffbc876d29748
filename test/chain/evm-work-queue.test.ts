import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Wallet } from "ethers";
import { evmNetworks, parseNetworks, type EvmNetwork } from "../../src/integrations/chain/config";
import { ChainWorkQueue } from "../../src/integrations/chain/work-queue";
import { EvmPayouts } from "../../src/integrations/evm/payouts";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { NATS_URL } from "../support/nats";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * With NATS, chain payout work travels on a JetStream work queue (real NATS, real Anvil, real
 * Postgres): the sweep queues each payout once per status, two "nodes" take their shares with
 * explicit acks, only the signer-lease holder signs, every payout is paid exactly once with
 * contiguous nonces, a message a node took and never acked (it died) is redelivered and finished by
 * the other, and the queue is empty at the end.
 */
const hot = anvilAccount(0);
const PAYOUTS = 12;
let anvil: Anvil;
let t: TestNode;
let networks: Record<string, EvmNetwork>;
let nc: NatsConnection;
const prefix = `cwq${crypto.randomUUID().slice(0, 8)}`;
const nodes: EvmPayouts[] = [];
const worked = new Map<EvmPayouts, number>();

function node(holder: string, queue = new ChainWorkQueue(nc, prefix, "evm", { ackWaitMs: 1_000, waitDelayMs: 100, retryDelayMs: 200 })): EvmPayouts {
  const w = new EvmPayouts(t.node.db, t.node.ops, t.node.vault, networks, 100, false, { holder, queue });
  const work = w.work.bind(w);
  w.work = (id, status) => {
    worked.set(w, (worked.get(w) ?? 0) + 1);
    return work(id, status);
  };
  nodes.push(w);
  return w;
}

beforeAll(async () => {
  anvil = await startAnvil({ chainId: 31337 });
  t = await startTestNode("evm-work-queue", { COFFER_TEST_STRIPE: "off" });
  networks = evmNetworks(parseNetworks({ ethereum: { kind: "evm", chainId: 31337, rpcUrls: [anvil.url], assets: { ETH: { native: true } }, feeModel: "eip1559", confirmations: 1 } }));
  nc = await connect({ servers: NATS_URL });
}, 60_000);

afterAll(async () => {
  for (const w of nodes) await w.stop();
  if (nc) {
    await (await jetstreamManager(nc)).streams.delete(`${prefix.toUpperCase()}_CHAIN_WORK`).catch(() => {});
    await nc.drain();
  }
  await t?.stop();
  await anvil?.stop();
});

const statuses = async (ids: string[]) =>
  (await t.node.db`select status from chain_payouts where withdrawal_id = any(${t.node.db.array(ids)}::uuid[])`).map((r) => r.status as string);

/** Until every payout completed (a bounded number of looks; the workers run on their own). */
async function allCompleted(ids: string[], deadlineMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const s = await statuses(ids);
    if (s.length === ids.length && s.every((x) => x === "completed")) return true;
    for (const w of nodes) w.kick();
    await Bun.sleep(100);
  }
  return false;
}

describe("chain payouts over a JetStream work queue", () => {
  test("two nodes share the queue: each payout paid once, nonces contiguous, the queue drained", async () => {
    const a = node("node-a");
    const b = node("node-b");
    await a.hotWallets.import("ethereum", hot.privateKey);
    await Promise.all([a.start(), b.start()]);
    const startNonce = BigInt(await anvil.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]));
    const requested = await Promise.all(
      Array.from({ length: PAYOUTS }, async (_, i) => {
        const wallet = await fundedWallet(t.api, "ETH", "1");
        const to = Wallet.createRandom().address;
        const amount = `0.${String(i + 1).padStart(2, "0")}`;
        const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination: { type: "crypto", network: "ethereum", address: to } });
        expect(res.status).toBe(201);
        return { id: res.body.id as string, to, wei: BigInt(i + 1) * 10_000_000_000_000_000n };
      }),
    );
    expect(await allCompleted(requested.map((r) => r.id))).toBe(true);
    for (const r of requested) expect(BigInt(await anvil.rpc<string>("eth_getBalance", [r.to, "latest"]))).toBe(r.wei);
    const nonces = (await t.node.db`select nonce::text as nonce from chain_payouts where withdrawal_id = any(${t.node.db.array(requested.map((r) => r.id))}::uuid[]) order by chain_payouts.nonce`).map((r) => BigInt(r.nonce as string));
    expect(nonces).toEqual(Array.from({ length: PAYOUTS }, (_, i) => startNonce + BigInt(i)));
    expect(BigInt(await anvil.rpc<string>("eth_getTransactionCount", [hot.address, "latest"]))).toBe(startNonce + BigInt(PAYOUTS));
    // Both nodes took work from the queue; nothing is left in it.
    expect(worked.get(a) ?? 0).toBeGreaterThan(0);
    expect(worked.get(b) ?? 0).toBeGreaterThan(0);
    // Work queued for a status just before the payout left it is acked (stale) when taken: the queue drains.
    const queue = new ChainWorkQueue(nc, prefix, "evm");
    await queue.start();
    let depth = await queue.depth();
    for (let i = 0; i < 50 && (depth.waiting || depth.inFlight); i++) {
      await Bun.sleep(100);
      depth = await queue.depth();
    }
    expect(depth).toEqual({ waiting: 0, inFlight: 0 });
  }, 60_000);

  test("a message a node took and never acked (it died) comes back after the ack wait, and the payout completes once", async () => {
    for (const w of nodes) await w.stop();
    // The "dead node": takes the next message from the shared consumer and says nothing.
    const wallet = await fundedWallet(t.api, "ETH", "1");
    const to = Wallet.createRandom().address;
    const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.5", destination: { type: "crypto", network: "ethereum", address: to } });
    const queue = new ChainWorkQueue(nc, prefix, "evm");
    await queue.start(); // publishing only: this sweeper takes no work
    const sweeper = node("node-a", queue);
    await sweeper.pass(); // queued, not stepped
    const consumer = await jetstream(nc).consumers.get(`${prefix.toUpperCase()}_CHAIN_WORK`, "chain-workers-evm");
    // Work the first test's sweeps queued after its payouts completed is stale: acked, as a node would.
    let taken = await consumer.next({ expires: 5_000 });
    for (let i = 0; i < 50 && taken && taken.string() !== `${res.body.id} new`; i++) {
      taken.ack();
      taken = await consumer.next({ expires: 5_000 });
    }
    expect(taken?.string()).toBe(`${res.body.id} new`);
    expect(await statuses([res.body.id])).toEqual([]); // the dead node did nothing with it
    // A live node: the message comes back to it after the ack wait.
    const live = node("node-a");
    await live.start();
    expect(await allCompleted([res.body.id])).toBe(true);
    expect(BigInt(await anvil.rpc<string>("eth_getBalance", [to, "latest"]))).toBe(500_000_000_000_000_000n);
  }, 60_000);
});
