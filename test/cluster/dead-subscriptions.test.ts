import { afterAll, beforeAll, expect, test } from "bun:test";
import { shardOf } from "../../actors/shards";
import { deleteClusterState } from "../support/nats";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { serveOn, type Side } from "../support/split-brain";

/**
 * A node that can no longer hear NATS (its subscriptions dead, as when a bad message used to kill
 * the connection's reader) must not keep its shards: it stops renewing its leases, says so on
 * /health, and the other node takes every shard within a lease's life and a bit.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `cofferdeaf${crypto.randomUUID().slice(0, 8)}`;
const SHARDS = 16;
const LEASE_TTL_MS = 2000;

let db: TestDatabase;
const nodes: Record<string, Side> = {};

async function start(nodeId: string) {
  const env = { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: String(LEASE_TTL_MS), NODE_ID: nodeId };
  nodes[nodeId] = await serveOn(nodeId, db.url, env);
}

/** Polls a condition (nothing announces a lease change), bounded by a deadline. */
async function within(deadlineMs: number, ok: () => boolean): Promise<number> {
  const started = Date.now();
  while (!ok()) {
    if (Date.now() - started > deadlineMs) throw new Error(`not within ${deadlineMs} ms`);
    await Bun.sleep(50);
  }
  return Date.now() - started;
}

beforeAll(async () => {
  db = await createTestDatabase("deafnode");
  await start("a");
  await start("b");
  const held = () => nodes.a!.node.cluster!.status().shards.length + nodes.b!.node.cluster!.status().shards.length;
  await within(LEASE_TTL_MS * 5, () => held() === SHARDS && nodes.a!.node.cluster!.status().shards.length > 0 && nodes.b!.node.cluster!.status().shards.length > 0);
});

afterAll(async () => {
  for (const n of Object.values(nodes)) await n.stop().catch(() => {});
  await deleteClusterState(PREFIX);
  await db.drop();
});

test("a node whose NATS subscriptions are killed loses its shards to the other within lease TTL + 2 s, and says so on /health", async () => {
  const a = nodes.a!;
  const b = nodes.b!;
  // A wallet on one of a's shards, made while all is well.
  let walletId = "";
  for (let i = 0; i < 100 && !walletId; i++) {
    const created = await b.api("POST", "/v1/wallets", { ownerId: "deaf", asset: "USD" });
    if (a.node.cluster!.status().shards.includes(shardOf(created.body.id, SHARDS))) walletId = created.body.id;
  }
  expect(walletId).not.toBe("");
  expect((await a.api("GET", "/health")).status).toBe(200);

  // Every subscription of a's connection dies (shard subjects, status, API, the reply inbox).
  const protocol = (a.node.nats as unknown as { protocol: { subscriptions: { all(): { unsubscribe(): void }[] } } }).protocol;
  for (const sub of protocol.subscriptions.all()) sub.unsubscribe();

  const tookMs = await within(LEASE_TTL_MS + 2_000, () => b.node.cluster!.status().shards.length === SHARDS);
  expect(tookMs).toBeLessThanOrEqual(LEASE_TTL_MS + 2_000);
  expect(a.node.cluster!.health().ok).toBe(false);
  const health = await a.api("GET", "/health", undefined, { token: null });
  expect(health.status).toBe(503);
  // The wallet answers through b, its new owner.
  const credit = await b.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "1.00" });
  expect(credit.status).toBe(201);
  expect((await b.api("GET", `/v1/wallets/${walletId}`)).body.balance.posted).toBe("1.00");
});
