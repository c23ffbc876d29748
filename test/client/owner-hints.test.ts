import { expect, test } from "bun:test";
import { createClient } from "../../client";

/**
 * The client's owner hints (client/http.ts) against a stand-in fetch: which hints it follows (only
 * trusted origins, only when asked), and how it falls back. test/cluster/forwarding.test.ts runs
 * the same against real nodes.
 */
const WALLET = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const OTHER = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6c";
const FAST = { retryDelayMs: 1, maxRetryDelayMs: 2 };

/** A stand-in for the cluster: every origin answers 201; `base` names `owner` as the wallet's owner. */
function cluster(owner: string, opts: { down?: Set<string>; misdirected?: Set<string> } = {}) {
  const seen: string[] = [];
  const fetch = async (url: string, _init: RequestInit): Promise<Response> => {
    const origin = new URL(url).origin;
    seen.push(origin);
    if (opts.down?.has(origin)) throw new TypeError("connection refused");
    if (opts.misdirected?.has(origin)) return new Response("{}", { status: 421 });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (origin !== owner) headers["coffer-owner"] = owner;
    return new Response(JSON.stringify({ id: crypto.randomUUID() }), { status: 201, headers });
  };
  return { fetch, seen };
}

const pay = (client: ReturnType<typeof createClient>, walletId = WALLET) => client.wallets.payments.create({ walletId, amount: "1.00" });

test("hints are ignored unless turned on", async () => {
  const c = cluster("http://127.0.0.1:3002");
  const client = createClient({ baseUrl: "http://127.0.0.1:3001", fetch: c.fetch, ...FAST });
  for (let i = 0; i < 3; i++) await pay(client);
  expect(c.seen).toEqual(Array(3).fill("http://127.0.0.1:3001"));
});

test("followOwnerHints follows hints to the base URL's own host only, never to another host", async () => {
  const sameHost = cluster("http://127.0.0.1:3002");
  const follows = createClient({ baseUrl: "http://127.0.0.1:3001", fetch: sameHost.fetch, followOwnerHints: true, ...FAST });
  for (let i = 0; i < 3; i++) await pay(follows);
  expect(sameHost.seen).toEqual(["http://127.0.0.1:3001", "http://127.0.0.1:3002", "http://127.0.0.1:3002"]);

  for (const hint of ["http://evil.example:3002", "https://127.0.0.1:3002", "http://user:pw@127.0.0.1:3002", "http://127.0.0.1:3002/steal"]) {
    const elsewhere = cluster(hint);
    const client = createClient({ baseUrl: "http://127.0.0.1:3001", fetch: elsewhere.fetch, followOwnerHints: true, ...FAST });
    for (let i = 0; i < 2; i++) await pay(client);
    expect(elsewhere.seen).toEqual(["http://127.0.0.1:3001", "http://127.0.0.1:3001"]);
  }
});

test("an allow-list follows exactly the origins it names", async () => {
  const listed = cluster("https://node-b.example.com");
  const client = createClient({ baseUrl: "https://coffer.example.com", fetch: listed.fetch, ownerHintOrigins: ["https://node-b.example.com/"], ...FAST });
  await pay(client);
  await pay(client);
  expect(listed.seen).toEqual(["https://coffer.example.com", "https://node-b.example.com"]);

  const unlisted = cluster("https://node-c.example.com");
  const strict = createClient({ baseUrl: "https://coffer.example.com", fetch: unlisted.fetch, ownerHintOrigins: ["https://node-b.example.com"], ...FAST });
  await pay(strict);
  await pay(strict);
  expect(unlisted.seen).toEqual(["https://coffer.example.com", "https://coffer.example.com"]);
});

test("an owner that does not answer, or answers 421, is forgotten and the same attempt goes to the base URL", async () => {
  const down = new Set<string>();
  const misdirected = new Set<string>();
  const c = cluster("http://127.0.0.1:3002", { down, misdirected });
  const client = createClient({ baseUrl: "http://127.0.0.1:3001", fetch: c.fetch, followOwnerHints: true, ...FAST });
  await pay(client);
  await pay(client);
  down.add("http://127.0.0.1:3002");
  await pay(client); // refused at the owner, answered by the base (which names the owner again)
  down.clear();
  misdirected.add("http://127.0.0.1:3002");
  await pay(client);
  expect(c.seen).toEqual([
    "http://127.0.0.1:3001",
    "http://127.0.0.1:3002",
    "http://127.0.0.1:3002",
    "http://127.0.0.1:3001",
    "http://127.0.0.1:3002",
    "http://127.0.0.1:3001",
  ]);
});

test("hints are kept per wallet, for the most recently used wallets only", async () => {
  const c = cluster("http://127.0.0.1:3002");
  const client = createClient({ baseUrl: "http://127.0.0.1:3001", fetch: c.fetch, followOwnerHints: true, ownerHintsMax: 1, ...FAST });
  await pay(client, WALLET);
  await pay(client, OTHER); // learning OTHER's owner forgets WALLET's (room for one)
  c.seen.length = 0;
  await pay(client, WALLET);
  await pay(client, OTHER);
  expect(c.seen).toEqual(["http://127.0.0.1:3001", "http://127.0.0.1:3001"]);
});
