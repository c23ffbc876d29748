import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import bolt11 from "bolt11";
import { parseEnvelope } from "../../actors/bus/envelope-schema";
import { Destination } from "../../src/api/schemas";
import { user } from "../support/auth";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";

/**
 * Crypto payout addresses over HTTP, on a real node: an address its network would refuse is a
 * 400 INVALID_ADDRESS naming `body.destination.address`, the network and the rule (never the
 * address), and nothing is held; a valid one is accepted (201) and shown masked; an asset the
 * network does not carry is a 400 UNSUPPORTED_NETWORK. For wallets and chamas alike.
 */
let t: TestNode;
/** The node's clock, moved by the Lightning expiry tests. */
let offset_ms = 0;
const clock = () => new Date(Date.now() + offset_ms);

beforeAll(async () => {
  t = await startTestNode("crypto-destinations", { COFFER_TEST_STRIPE: "off", LIGHTNING_NETWORK: "bitcoin" }, { now: clock, chamaExpiryPollMs: 3_600_000 });
});
afterAll(() => t.stop());

const EIP55 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const EIP55_FLIPPED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
const TAPROOT = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0";
const TON = "EQD-cvR0Nz6XAyRBvbhz-abTrRC6sI5tvHvvpeQraV9UAAD7";
const BOLT11_KEY = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734";

function invoice(msat: bigint | undefined, timestamp_s = Math.floor(clock().getTime() / 1000), expiry_s = 600): string {
  const encoded = bolt11.encode(
    {
      network: { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] },
      timestamp: timestamp_s,
      ...(msat !== undefined ? { millisatoshis: msat.toString() } : {}),
      tags: [
        { tagName: "payment_hash", data: "0001020304050607080900010203040506070809000102030405060708090102" },
        { tagName: "payment_secret", data: "1111111111111111111111111111111111111111111111111111111111111111" },
        { tagName: "description", data: "withdrawal" },
        { tagName: "expire_time", data: expiry_s },
        { tagName: "feature_bits", data: { word_length: 4, var_onion_optin: { required: true }, payment_secret: { required: true } } },
      ],
    } as Parameters<typeof bolt11.encode>[0],
    false,
  );
  return bolt11.sign(encoded, BOLT11_KEY).paymentRequest!;
}

const withdraw = (wallet: string, amount: string, destination: Record<string, unknown>, key?: string) =>
  t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount, destination }, key ? { key } : {});

async function heldOf(wallet: string): Promise<string> {
  return (await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.held;
}

async function withdrawalCount(wallet: string): Promise<number> {
  const [row] = await t.node.db`select count(*)::int as n from withdrawals where wallet_id = ${wallet}`;
  return row!.n as number;
}

/** An INVALID_ADDRESS answer: the field, the network and the rule named; nothing of the address repeated. */
function expectInvalidAddress(res: ApiResponse, network: string, rule: string, address: string): void {
  expectProblem(res, 400, "INVALID_ADDRESS");
  expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(["body.destination.address"]);
  expect(res.body.detail).toContain(network);
  expect(res.body.detail).toContain(`rule: ${rule}`);
  const text = JSON.stringify(res.body);
  expect(text).not.toContain(address);
  expect(text).not.toContain(address.slice(0, 16));
}

describe("wallets", () => {
  test("an ETH withdrawal to a mixed-case address that fails EIP-55 is a 400 INVALID_ADDRESS, and nothing is held", async () => {
    const wallet = await fundedWallet(t.api, "ETH", "2");
    const res = await withdraw(wallet, "1", { type: "crypto", network: "ethereum", address: EIP55_FLIPPED });
    expectInvalidAddress(res, "ethereum", "eip55", EIP55_FLIPPED);
    expect(await heldOf(wallet)).toBe("0.000000000000000000");
    expect(await withdrawalCount(wallet)).toBe(0);
  });

  test("a valid EIP-55 address is accepted, held and shown by its ends", async () => {
    const wallet = await fundedWallet(t.api, "USDC", "10");
    const res = await withdraw(wallet, "2.5", { type: "crypto", network: "arbitrum", address: EIP55 });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("requested");
    expect(res.body.destination).toEqual({ type: "crypto", network: "arbitrum", address: "0x5aAe…eAed" });
    expect(await heldOf(wallet)).toBe("2.500000");
  });

  test("bitcoin: a testnet address on mainnet is refused, a taproot address accepted", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const wrong = await withdraw(wallet, "0.1", { type: "crypto", network: "bitcoin", address: "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7" });
    expectInvalidAddress(wrong, "bitcoin", "network", "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7");
    const right = await withdraw(wallet, "0.1", { type: "crypto", network: "bitcoin", address: TAPROOT });
    expect(right.status).toBe(201);
    expect(right.body.destination).toEqual({ type: "crypto", network: "bitcoin", address: "bc1p0x…5jj0" });
    expect(await heldOf(wallet)).toBe("0.10000000");
  });

  test("NEAR (24 decimals) and TON (9 decimals) are assets with their own networks", async () => {
    const near = await fundedWallet(t.api, "NEAR", "5");
    const nearBad = await withdraw(near, "1", { type: "crypto", network: "near", address: "Alice.near" });
    expectInvalidAddress(nearBad, "near", "characters", "Alice.near");
    const nearOk = await withdraw(near, "1.000000000000000000000001", { type: "crypto", network: "near", address: "alice.near" });
    expect(nearOk.status).toBe(201);
    expect(nearOk.body.amount).toBe("1.000000000000000000000001");
    expect(await heldOf(near)).toBe("1.000000000000000000000001");

    const ton = await fundedWallet(t.api, "TON", "5");
    const tonBad = await withdraw(ton, "1", { type: "crypto", network: "ton", address: `1:${"ab".repeat(32)}` });
    expectInvalidAddress(tonBad, "ton", "workchain", `1:${"ab".repeat(32)}`);
    const tonOk = await withdraw(ton, "0.000000001", { type: "crypto", network: "ton", address: TON });
    expect(tonOk.status).toBe(201);
    expect(tonOk.body.destination).toEqual({ type: "crypto", network: "ton", address: "EQD-cv…AAD7" });
    expect(await heldOf(ton)).toBe("0.000000001");
  });

  test("an asset the network does not carry is a 400 UNSUPPORTED_NETWORK, and nothing is held", async () => {
    const btc = await fundedWallet(t.api, "BTC", "1");
    const toEthereum = await withdraw(btc, "0.1", { type: "crypto", network: "ethereum", address: EIP55 });
    expectProblem(toEthereum, 400, "UNSUPPORTED_NETWORK");
    expect(toEthereum.body.errors).toEqual([{ path: "body.destination.network", message: "ethereum does not carry BTC (it carries ETH, USDC)" }]);
    const eth = await fundedWallet(t.api, "ETH", "1");
    expectProblem(await withdraw(eth, "0.1", { type: "crypto", network: "near", address: "alice.near" }), 400, "UNSUPPORTED_NETWORK");
    const usd = await fundedWallet(t.api, "USD", "10");
    const fiat = await withdraw(usd, "1.00", { type: "crypto", network: "ethereum", address: EIP55 });
    expectProblem(fiat, 400, "UNSUPPORTED_NETWORK");
    expect(fiat.body.errors[0].path).toBe("body.destination.type");
    for (const wallet of [btc, eth]) expect(await withdrawalCount(wallet)).toBe(0);
    expect(await heldOf(usd)).toBe("0.00");
  });

  test("the network is checked before the address: a bad address to the wrong network is UNSUPPORTED_NETWORK", async () => {
    const btc = await fundedWallet(t.api, "BTC", "1");
    expectProblem(await withdraw(btc, "0.1", { type: "crypto", network: "solana", address: "nope" }), 400, "UNSUPPORTED_NETWORK");
  });

  test("a withdrawal to bitcoin stays requested for an external processor, which processes and completes it", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const requested = await withdraw(wallet, "0.25", { type: "crypto", network: "bitcoin", address: "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2" });
    expect(requested.status).toBe(201);
    const id = requested.body.id as string;
    expect((await t.api("GET", `/v1/withdrawals/${id}`)).body.status).toBe("requested");
    expect((await t.api("POST", `/v1/withdrawals/${id}/process`, {})).body.status).toBe("processing");
    expect((await t.api("POST", `/v1/withdrawals/${id}/complete`, {})).body.status).toBe("completed");
    const after = (await t.api("GET", `/v1/wallets/${wallet}`)).body.balance;
    expect(after).toEqual({ posted: "0.75000000", held: "0.00000000", available: "0.75000000" });
  });
});

describe("wallets: Lightning", () => {
  test("an invoice for exactly the amount is accepted and shown as its network and amount only", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const pay = invoice(150_000_000n);
    const res = await withdraw(wallet, "0.0015", { type: "crypto", network: "lightning", address: pay });
    expect(res.status).toBe(201);
    expect(res.body.destination).toEqual({ type: "crypto", network: "lightning", amount: "0.00150000" });
    expect(JSON.stringify(res.body)).not.toContain(pay.slice(0, 20));
    const read = await t.api("GET", `/v1/withdrawals/${res.body.id}`);
    expect(read.body.destination).toEqual({ type: "crypto", network: "lightning", amount: "0.00150000" });
    expect(await heldOf(wallet)).toBe("0.00150000");
  });

  test("an invoice without an amount is accepted for any amount", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const res = await withdraw(wallet, "0.00000001", { type: "crypto", network: "lightning", address: invoice(undefined) });
    expect(res.status).toBe(201);
    expect(res.body.destination).toEqual({ type: "crypto", network: "lightning", amount: "0.00000001" });
  });

  test("an invoice for another amount is refused, and nothing is held", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const pay = invoice(150_001_000n);
    expectInvalidAddress(await withdraw(wallet, "0.0015", { type: "crypto", network: "lightning", address: pay }), "lightning", "amount-mismatch", pay);
    expect(await heldOf(wallet)).toBe("0.00000000");
  });

  test("an expired invoice is refused on the node's clock; the first answer to a key is still replayed after expiry", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const pay = invoice(100_000n, undefined, 600);
    const key = crypto.randomUUID();
    const first = await withdraw(wallet, "0.000001", { type: "crypto", network: "lightning", address: pay }, key);
    expect(first.status).toBe(201);
    offset_ms = 601_000;
    try {
      const later = await withdraw(wallet, "0.000001", { type: "crypto", network: "lightning", address: pay });
      expectInvalidAddress(later, "lightning", "expired", pay);
      const retried = await withdraw(wallet, "0.000001", { type: "crypto", network: "lightning", address: pay }, key);
      expect({ status: retried.status, body: retried.body }).toEqual({ status: first.status, body: first.body });
    } finally {
      offset_ms = 0;
    }
    expect(await withdrawalCount(wallet)).toBe(1);
    expect(await heldOf(wallet)).toBe("0.00000100");
  });

  test("a testnet invoice is refused where LIGHTNING_NETWORK is bitcoin", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1");
    const testnet = "lntb20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un98kmzzhznpurw9sgl2v0nklu2g4d0keph5t7tj9tcqd8rexnd07ux4uv2cjvcqwaxgj7v4uwn5wmypjd5n69z2xm3xgksg28nwht7f6zspwp3f9t";
    expectInvalidAddress(await withdraw(wallet, "0.02", { type: "crypto", network: "lightning", address: testnet }), "lightning", "network", testnet);
  });
});

describe("the longest address the schema takes", () => {
  test("fits the bus once sealed: a command carrying it is a valid envelope between nodes", () => {
    const destination = { type: "crypto", network: "lightning", address: "l".repeat(2048) };
    const withdrawalId = crypto.randomUUID();
    const envelope = {
      kind: "wallet",
      command: { type: "withdrawal.request", withdrawalId, amount: 1n, destination: { masked: { type: "crypto", network: "lightning", amount: "0.00000001" }, sealed: t.node.vault.seal(destination, withdrawalId) }, at: new Date().toISOString() },
      idempotency: { scope: "s", key: "k", fingerprint: "f" },
      principal: { sub: "test-admin", role: "admin", permissions: [] },
    };
    const parsed = parseEnvelope(envelope);
    expect(parsed.ok ? "ok" : parsed.problem).toBe("ok");
    expect(Destination.safeParse(destination).success).toBe(true);
    expect(Destination.safeParse({ ...destination, address: "l".repeat(2049) }).success).toBe(false);
  });
});

describe("chamas", () => {
  const admin = user("crypto-chama-admin");

  async function fundedChama(asset: string, amount: string): Promise<string> {
    const created = await t.api("POST", "/v1/chamas", { name: `Crypto ${asset}`, asset }, { as: admin });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // Withdrawals need approvals from admins other than the requester: a second admin.
    expect((await t.api("POST", `/v1/chamas/${id}/members`, { memberId: "crypto-chama-second", role: "admin" }, { as: admin })).status).toBe(201);
    expect((await t.api("POST", `/v1/chamas/${id}/deposits`, { memberId: admin.sub, amount })).status).toBe(201);
    return id;
  }

  const request = (chama: string, amount: string, destination: Record<string, unknown>) =>
    t.api("POST", `/v1/chamas/${chama}/withdrawals`, { amount, destination }, { as: admin });

  async function chamaState(chama: string) {
    const held = (await t.api("GET", `/v1/chamas/${chama}`, undefined, { as: admin })).body.balance.held as string;
    const items = (await t.api("GET", `/v1/chamas/${chama}/withdrawals`, undefined, { as: admin })).body.items as unknown[];
    return { held, withdrawals: items.length };
  }

  test("an invalid address is a 400 INVALID_ADDRESS and nothing is held; a valid one is accepted", async () => {
    const chama = await fundedChama("SOL", "10");
    const bad = "1111111111111111111111111111111";
    expectInvalidAddress(await request(chama, "1", { type: "crypto", network: "solana", address: bad }), "solana", "length", bad);
    expect(await chamaState(chama)).toEqual({ held: "0.000000000", withdrawals: 0 });
    const good = await request(chama, "1", { type: "crypto", network: "solana", address: "7EqQdEULxWcraVx3mXKFjc84LhCkMGZCkRuDpvcMwJeK" });
    expect(good.status).toBe(201);
    expect(good.body.destination).toEqual({ type: "crypto", network: "solana", address: "7EqQdE…wJeK" });
    expect((await chamaState(chama)).withdrawals).toBe(1);
  });

  test("an asset the network does not carry is a 400 UNSUPPORTED_NETWORK, and nothing is held", async () => {
    const chama = await fundedChama("SOL", "10");
    const res = await request(chama, "1", { type: "crypto", network: "ethereum", address: EIP55 });
    expectProblem(res, 400, "UNSUPPORTED_NETWORK");
    expect(res.body.errors).toEqual([{ path: "body.destination.network", message: "ethereum does not carry SOL (it carries ETH, USDC)" }]);
    expect(await chamaState(chama)).toEqual({ held: "0.000000000", withdrawals: 0 });
  });

  test("a Lightning invoice for the chama's withdrawal is checked the same way", async () => {
    const chama = await fundedChama("BTC", "1");
    const wrong = invoice(1_000n);
    expectInvalidAddress(await request(chama, "0.001", { type: "crypto", network: "lightning", address: wrong }), "lightning", "amount-mismatch", wrong);
    const right = await request(chama, "0.001", { type: "crypto", network: "lightning", address: invoice(100_000_000n) });
    expect(right.status).toBe(201);
    expect(right.body.destination).toEqual({ type: "crypto", network: "lightning", amount: "0.00100000" });
  });
});
