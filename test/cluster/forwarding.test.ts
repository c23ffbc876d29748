import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import postgres from "postgres";
import { BusKeys } from "../../actors/bus/keys";
import { openReply, sealRequest } from "../../actors/bus/wire";
import { encode } from "../../actors/codec";
import type { Envelope } from "../../actors/envelope";
import { batchSubject, decodeBatch, decodeBatchReply, DROPPED, encodeBatch, NOT_MINE } from "../../actors/forwarding";
import { NatsRouter } from "../../actors/nats-router";
import { shardOf } from "../../actors/shards";
import { createClient } from "../../client";
import { scopeOf, type PrincipalClaim } from "../../lib/principal";
import { loadConfig } from "../../src/config";
import { startNode, type Node } from "../../src/node";
import { ADMIN, tokenFor, user } from "../support/auth";
import { claimNode } from "../support/budget";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { deleteClusterState, NATS_URL } from "../support/nats";
import { apiFor, testNodeEnv, type Api } from "../support/node";

/**
 * Forwarding in a cluster: three real nodes in this process on one Postgres and the real NATS, each
 * serving HTTP with a PUBLIC_URL. Commands for a wallet another node owns travel to it many to a
 * NATS message (counted here on the wire), each command inside still checked on its own by the bus
 * guard; answers to forwarded requests name the owner (`Coffer-Owner`), and the typed client that
 * trusts the hint sends that wallet's next requests straight there, falling back when it dies.
 */
const RUN = crypto.randomUUID().slice(0, 8);
const PREFIX = `cofferfw${RUN}`;
const SHARDS = 16;
const LEASE_TTL_MS = 2_000;
const ENV = { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: String(LEASE_TTL_MS), COFFER_TEST_STRIPE: "off" };

interface Member {
  id: string;
  node: Node;
  url: string;
  api: Api;
  /** Payment requests this node's HTTP server received, by wallet id. */
  payments: Map<string, number>;
  server: ReturnType<typeof Bun.serve>;
  stopped: boolean;
  stop(): Promise<void>;
}

let db: TestDatabase;
let sql: postgres.Sql;
let observer: NatsConnection;
const members = new Map<string, Member>();
const node = (id: string) => members.get(id)!;

async function startMember(id: string): Promise<Member> {
  const release = claimNode(`forwarding ${id}`);
  let handler: (req: Request) => Response | Promise<Response> = () => new Response("starting", { status: 503 });
  const payments = new Map<string, number>();
  // Listening first, so the node's PUBLIC_URL can name its port.
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req) => {
      const paid = /^\/v1\/wallets\/([0-9a-f-]{36})\/payments$/.exec(new URL(req.url).pathname);
      if (paid) payments.set(paid[1]!, (payments.get(paid[1]!) ?? 0) + 1);
      return handler(req);
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  try {
    const config = loadConfig({ ...(await testNodeEnv({ ...ENV, NODE_ID: id, PUBLIC_URL: url })), DATABASE_URL: db.url });
    const started = await startNode(config, db.url);
    handler = started.http.fetch;
    const member: Member = {
      id,
      node: started,
      url,
      api: apiFor(url),
      payments,
      server,
      stopped: false,
      async stop() {
        if (member.stopped) return;
        member.stopped = true;
        await server.stop(true);
        await started.close();
        release();
      },
    };
    return member;
  } catch (error) {
    await server.stop(true);
    release();
    throw error;
  }
}

const live = () => [...members.values()].filter((m) => !m.stopped);

/** Rounds on every live node until each holds exactly its share among them (bounded; rounds are awaited, not slept through). */
async function settle(): Promise<void> {
  const expected = live().map((m) => m.id).sort();
  for (let round = 0; round < 40; round++) {
    await Promise.all(live().map((m) => m.node.cluster!.runRound()));
    if (live().every((m) => m.node.cluster!.settled() && m.node.cluster!.status().liveNodes.join() === expected.join())) return;
    await Bun.sleep(50); // a lease another node holds frees only when it hands it back or it runs out
  }
  throw new Error(`the cluster did not settle among ${expected.join(",")}`);
}

const ownerOfWallet = (walletId: string): Member | undefined =>
  live().find((m) => m.node.cluster!.status().shards.includes(shardOf(walletId, SHARDS)));

/** Wallets (made through n1, funded) until `count` of them are owned by `owner`. */
async function walletsOwnedBy(owner: string, count: number, amount = "1000.00"): Promise<string[]> {
  const found: string[] = [];
  for (let i = 0; found.length < count && i < count * 20; i++) {
    const created = await node("n1").api("POST", "/v1/wallets", { ownerId: `fw-${owner}-${i}`, asset: "USD" });
    expect(created.status).toBe(201);
    if (ownerOfWallet(created.body.id)?.id === owner) found.push(created.body.id);
  }
  expect(found.length).toBe(count);
  for (const id of found) expect((await node("n1").api("POST", `/v1/wallets/${id}/credits`, { amount })).status).toBe(201);
  return found;
}

/** Messages seen on the wire, by what they were. */
function countMessages() {
  const counts = { batches: new Map<string, number>(), singles: 0 };
  const batches = observer.subscribe(`${PREFIX}.node.*.commands`, {
    callback: (_e, msg) => void counts.batches.set(msg.subject, (counts.batches.get(msg.subject) ?? 0) + 1),
  });
  const singles = observer.subscribe(`${PREFIX}.wallet.>`, { callback: () => void counts.singles++ });
  return {
    counts,
    async stop() {
      await observer.flush();
      batches.unsubscribe();
      singles.unsubscribe();
    },
  };
}

beforeAll(async () => {
  db = await createTestDatabase("forwarding");
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  observer = await connect({ servers: NATS_URL });
  for (const id of ["n1", "n2", "n3"]) members.set(id, await startMember(id));
  await settle();
}, 60_000);

afterAll(async () => {
  await observer?.drain();
  await sql?.end({ timeout: 5 });
  await Promise.all([...members.values()].map((m) => m.stop()));
  await deleteClusterState(PREFIX);
  await db?.drop();
});

describe("forwarding between nodes", () => {
  test("many commands for wallets another node owns leave in far fewer NATS messages, each applied exactly once", async () => {
    const wallets = await walletsOwnedBy("n2", 4);
    const n1 = node("n1");
    const router = (n1.node.ops as unknown as { router: NatsRouter }).router;
    const before = { ...router.sent };
    const wire = countMessages();
    const COMMANDS = 240;
    const keys = Array.from({ length: COMMANDS }, (_, i) => `fw-coalesce-${RUN}-${i}`);
    const answers = await Promise.all(keys.map((key, i) => n1.api("POST", `/v1/wallets/${wallets[i % wallets.length]}/payments`, { amount: "0.25" }, { key })));
    await wire.stop();

    for (const a of answers) expect(a.status).toBe(201);
    // Every answer a batch carried names the owner (one sent again alone, after a batch timed out on a
    // loaded machine, would not).
    expect(answers.filter((a) => a.headers.get("coffer-owner") === node("n2").url).length).toBeGreaterThanOrEqual(COMMANDS - wire.counts.singles);
    const toOwner = wire.counts.batches.get(batchSubject(PREFIX, "n2")) ?? 0;
    const sent = { batches: router.sent.batches - before.batches, batched: router.sent.batchedCommands - before.batchedCommands, singles: router.sent.singles - before.singles };
    console.info(`forwarding: ${COMMANDS} payments through n1 for 4 wallets on n2 → ${toOwner} NATS messages to n2 (${sent.batched} commands in ${sent.batches} batches, ${(sent.batched / Math.max(1, sent.batches)).toFixed(1)} per message), ${wire.counts.singles} single-command messages`);
    expect(sent.batched).toBe(COMMANDS);
    expect(toOwner).toBe(sent.batches);
    expect(wire.counts.singles).toBe(sent.singles);
    expect(toOwner + wire.counts.singles).toBeLessThanOrEqual(COMMANDS / 4);

    // Operators see it: what each node routed, and where callers reach it.
    const view = await n1.api("GET", "/admin/cluster");
    const n1View = view.body.nodes.find((n: { nodeId: string }) => n.nodeId === "n1");
    expect(n1View.publicUrl).toBe(n1.url);
    expect(n1View.forwarded.batchedCommands).toBeGreaterThanOrEqual(COMMANDS);

    // Exactly once: one journal per acknowledged payment, and the balances say so.
    const ids = answers.map((a) => a.body.id as string);
    expect(new Set(ids).size).toBe(COMMANDS);
    const [journals] = await sql`select count(*)::int as n from journals where id in ${sql(ids)}`;
    expect(journals!.n).toBe(COMMANDS);
    for (const id of wallets) expect((await n1.api("GET", `/v1/wallets/${id}`)).body.balance.posted).toBe(`${1000 - (COMMANDS / wallets.length) * 0.25}.00`);
    // A retry with the same key, through another node, answers the first outcome.
    for (const i of [0, 1, COMMANDS - 1]) {
      const replay = await node("n3").api("POST", `/v1/wallets/${wallets[i % wallets.length]}/payments`, { amount: "0.25" }, { key: keys[i] });
      expect(replay.body).toEqual(answers[i]!.body);
    }
  }, 60_000);

  test("a forged or replayed command inside a signed batch is dropped alone; the others run; a batch not signed by a node runs nothing", async () => {
    const [wallet] = await walletsOwnedBy("n2", 1, "10.00");
    const keys = await BusKeys.load(loadConfig(ENV).clusterKeysFile);
    const stranger = BusKeys.of("c1", { c1: Buffer.alloc(32, 7) });
    const subject = `${PREFIX}.wallet.${shardOf(wallet!, SHARDS)}.${wallet}`;
    const admin: PrincipalClaim = { sub: "test-admin", role: "admin", permissions: [] };
    const payment = (key: string, amount: bigint): Envelope => ({
      kind: "wallet",
      command: { type: "wallet.payment", at: new Date().toISOString(), journalId: crypto.randomUUID(), amount },
      idempotency: { scope: scopeOf(admin), key, fingerprint: `fp-${key}` },
      principal: admin,
    });
    const good1 = sealRequest(keys, subject, encode(payment(`good1-${RUN}`, 100n)), Date.now()).payload;
    const forged = sealRequest(stranger, subject, encode(payment(`forged-${RUN}`, 500n)), Date.now()).payload;
    const good2 = sealRequest(keys, subject, encode(payment(`good2-${RUN}`, 200n)), Date.now()).payload;
    const to = batchSubject(PREFIX, "n2");
    const droppedBefore = node("n2").node.cluster!.status().busDropped;

    // The batch itself is signed by a node: each command is judged on its own (the replayed copy of good1 too).
    // And a command for a shard n2 does not hold: "not mine", never forwarded on from there.
    const elsewhere = Array.from({ length: SHARDS }, (_, shard) => shard).find((shard) => !node("n2").node.cluster!.status().shards.includes(shard))!;
    const batch = sealRequest(keys, to, encodeBatch([[subject, good1], [subject, forged], [subject, good2], [subject, good1], [`${PREFIX}.wallet.${elsewhere}.${wallet}`, good1]]), Date.now());
    const msg = await observer.request(to, batch.payload, { timeout: 5_000 });
    const body = openReply(keys, batch.nonce, msg.data);
    expect(body).toBeDefined();
    const reply = decodeBatchReply(body!, 5)!;
    expect(reply.nodeId).toBe("n2");
    expect(reply.publicUrl).toBe(node("n2").url);
    const [first, second, third, fourth, fifth] = reply.answers;
    expect(first).toMatchObject({ status: 201 });
    expect(second).toBe(DROPPED);
    expect(third).toMatchObject({ status: 201 });
    expect(fourth).toBe(DROPPED);
    expect(fifth).toBe(NOT_MINE);
    const dropped = node("n2").node.cluster!.status().busDropped;
    expect((dropped.bad_mac ?? 0) - (droppedBefore.bad_mac ?? 0)).toBe(1);
    expect((dropped.replay ?? 0) - (droppedBefore.replay ?? 0)).toBe(1);

    // A batch signed with a key no node has: no answer, nothing done (not even its well-signed commands).
    const good3 = sealRequest(keys, subject, encode(payment(`good3-${RUN}`, 300n)), Date.now()).payload;
    const unsigned = sealRequest(stranger, to, encodeBatch([[subject, good3]]), Date.now());
    await expect(observer.request(to, unsigned.payload, { timeout: 500 })).rejects.toThrow();
    // The node is still well: a normal payment goes through after all that.
    expect((await node("n1").api("POST", `/v1/wallets/${wallet}/payments`, { amount: "0.01" })).status).toBe(201);

    const [payments] = await sql<{ n: number }[]>`select count(*)::int as n from journals where wallet_id = ${wallet!} and kind = 'payment'`;
    expect(payments!.n).toBe(3);
    // 10.00 − 1.00 − 2.00 − 0.01: the two good commands and the last payment, nothing else.
    expect((await node("n1").api("GET", `/v1/wallets/${wallet}`)).body.balance.posted).toBe("6.99");
  }, 60_000);

  test("a chama's command forwarded in a batch keeps its chama subject, and the answer names the owner", async () => {
    const inside: string[] = [];
    const sub = observer.subscribe(batchSubject(PREFIX, "n2"), {
      callback: (_e, msg) => {
        const text = new TextDecoder().decode(msg.data);
        for (const [subject] of decodeBatch(text.slice(text.indexOf("\n") + 1)) ?? []) inside.push(subject);
      },
    });
    await observer.flush();
    let chamaId: string | undefined;
    let creator = "";
    for (let i = 0; i < 40 && !chamaId; i++) {
      creator = `fw-chama-${RUN}-${i}`;
      const created = await node("n1").api("POST", "/v1/chamas", { name: `forwarded ${i}`, asset: "USD" }, { as: user(creator) });
      expect(created.status).toBe(201);
      if (ownerOfWallet(created.body.id)?.id === "n2") chamaId = created.body.id;
    }
    // A platform admin deposits for the member: a route whose path names the chama.
    const deposit = await node("n1").api("POST", `/v1/chamas/${chamaId}/deposits`, { memberId: creator, amount: "5.00" });
    expect(deposit.status).toBe(201);
    await observer.flush();
    sub.unsubscribe();
    expect(chamaId).toBeDefined();
    expect(inside).toContain(`${PREFIX}.chama.${shardOf(chamaId!, SHARDS)}.${chamaId}`);
    expect(new Set(inside.filter((s) => s.endsWith(chamaId!)))).toEqual(new Set([`${PREFIX}.chama.${shardOf(chamaId!, SHARDS)}.${chamaId}`]));
    expect(deposit.headers.get("coffer-owner")).toBe(node("n2").url);
  }, 60_000);

  test("the client that trusts hints sends a wallet's later requests straight to its owner, and falls back when the owner dies", async () => {
    const [wallet] = await walletsOwnedBy("n3", 1, "100.00");
    const n1 = node("n1");
    const n3 = node("n3");
    const token = () => tokenFor(ADMIN);
    const FAST = { retryDelayMs: 20, maxRetryDelayMs: 200, maxAttempts: 10, deadlineMs: 30_000 };

    // Hints off (the default): everything goes to the base URL.
    const plain = createClient({ baseUrl: n1.url, token, ...FAST });
    for (let i = 0; i < 3; i++) await plain.wallets.payments.create({ walletId: wallet!, amount: "0.10" });
    expect({ n1: n1.payments.get(wallet!) ?? 0, n3: n3.payments.get(wallet!) ?? 0 }).toEqual({ n1: 3, n3: 0 });

    // A hint to an origin the allow-list does not name is ignored.
    const listed = createClient({ baseUrl: n1.url, token, ownerHintOrigins: [node("n2").url], ...FAST });
    for (let i = 0; i < 3; i++) await listed.wallets.payments.create({ walletId: wallet!, amount: "0.10" });
    expect({ n1: n1.payments.get(wallet!) ?? 0, n3: n3.payments.get(wallet!) ?? 0 }).toEqual({ n1: 6, n3: 0 });

    // Trusted: the first request is forwarded and its answer names n3; the next ones land on n3.
    const coffer = createClient({ baseUrl: n1.url, token, followOwnerHints: true, ...FAST });
    for (let i = 0; i < 10; i++) await coffer.wallets.payments.create({ walletId: wallet!, amount: "0.10" });
    expect({ n1: n1.payments.get(wallet!) ?? 0, n3: n3.payments.get(wallet!) ?? 0 }).toEqual({ n1: 7, n3: 9 });

    // The owner dies: the client's next request finds nobody at n3, forgets the hint and goes to n1,
    // which reaches the wallet's new owner once the others have taken n3's shards.
    await n3.stop();
    const keyed = Array.from({ length: 5 }, (_, i) => `fw-after-${RUN}-${i}`);
    const after = [];
    for (const key of keyed) after.push(await coffer.wallets.payments.create({ walletId: wallet!, amount: "0.10" }, { idempotencyKey: key }));
    expect(after.length).toBe(5);
    await settle();
    const owner = ownerOfWallet(wallet!)!;
    expect(["n1", "n2"]).toContain(owner.id);
    // Once a node forwards to the new owner and names it, the client follows again (or stays, when n1 owns it).
    const landedBefore = owner.payments.get(wallet!) ?? 0;
    for (let i = 0; i < 4; i++) await coffer.wallets.payments.create({ walletId: wallet!, amount: "0.10" });
    expect((owner.payments.get(wallet!) ?? 0) - landedBefore).toBeGreaterThanOrEqual(3);

    // Exactly once through all of it: 3 + 3 + 10 + 5 + 4 payments of 0.10.
    const [payments] = await sql<{ n: number }[]>`select count(*)::int as n from journals where wallet_id = ${wallet!} and kind = 'payment'`;
    expect(payments!.n).toBe(25);
    expect((await n1.api("GET", `/v1/wallets/${wallet}`)).body.balance.posted).toBe("97.50");
  }, 60_000);
});
