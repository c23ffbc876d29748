import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Envelope, Reply } from "../../actors/envelope";
import { shardOf } from "../../actors/shards";
import type { Node } from "../../src/node";
import { clusterView, shardsSettled } from "../support/cluster";
import { verifyIsClean } from "../support/ledger";
import { deleteClusterState } from "../support/nats";
import { createTestDatabase, type TestDatabase } from "../support/db";
import type { Api } from "../support/node";
import { serveOn } from "../support/split-brain";

/**
 * A split brain forced on purpose: node A holds a wallet's shard, and node B is made to believe it
 * holds it too (commands handed straight to B's actor host, as a node that missed losing its lease
 * would). Both serve the wallet at once. The snapshot's version check must refuse the loser's
 * writes: no unit is spent twice, and the books stay whole.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `cofferbrain${crypto.randomUUID().slice(0, 8)}`;
const SHARDS = 8;

let db: TestDatabase;
const nodes: { node: Node; api: Api; stop(): Promise<void> }[] = [];

async function start(nodeId: string) {
  nodes.push(await serveOn(nodeId, db.url, { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: "2000", NODE_ID: nodeId }));
}

beforeAll(async () => {
  db = await createTestDatabase("splitbrain");
  await start("a");
  await start("b");
  await shardsSettled(() => clusterView(nodes[0]!.api), ["a", "b"], SHARDS, 10_000);
});

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await deleteClusterState(PREFIX);
  await db.drop();
});

test("two nodes serving one wallet at once never spend a unit twice: the loser's writes are refused", async () => {
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  // A wallet whose shard node A holds, funded for exactly 37 payments.
  let walletId = "";
  for (let i = 0; i < 50 && !walletId; i++) {
    const created = await a.api("POST", "/v1/wallets", { ownerId: "brain", asset: "USD" });
    const shard = shardOf(created.body.id, SHARDS);
    if (a.node.cluster!.status().shards.includes(shard)) walletId = created.body.id;
  }
  expect(walletId).not.toBe("");
  expect((await a.api("POST", `/v1/wallets/${walletId}/credits`, { amount: "37.00" })).status).toBe(201);

  // Half the payments go the proper way (routed to A); half straight into B's actors.
  const viaB = (i: number): Promise<Reply> => {
    const key = `brain-b-${i}`;
    const envelope: Envelope = {
      command: { type: "wallet.payment", journalId: Bun.randomUUIDv7(), amount: 100n, at: new Date().toISOString() },
      idempotency: { scope: "admin:split-brain", key, fingerprint: key },
      principal: { sub: "split-brain", role: "admin", permissions: [] },
    };
    return b.node.host.dispatch(walletId, envelope);
  };
  const answers = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      i % 2 ? viaB(i) : a.api("POST", `/v1/wallets/${walletId}/payments`, { amount: "1.00" }).then((r) => ({ status: r.status, body: r.body })),
    ),
  );
  const ok = answers.filter((x) => x.status === 201).length;
  const refused = answers.filter((x) => x.status === 409 && x.body.code === "INSUFFICIENT_FUNDS").length;
  const retryable = answers.filter((x) => x.status === 503).length;
  expect(ok + refused + retryable).toBe(100);
  expect(ok).toBeLessThanOrEqual(37);

  // Every success is one journal and one debit; the balance never went below zero.
  const [row] = await a.node.db`select posted::text, held::text from wallets where id = ${walletId}`;
  const [journals] = await a.node.db`select count(*)::int as n from journals where wallet_id = ${walletId} and kind = 'payment'`;
  expect(journals!.n).toBe(ok);
  expect(BigInt(row!.posted)).toBe(3700n - 100n * BigInt(ok));
  expect(BigInt(row!.posted)).toBeGreaterThanOrEqual(0n);
  await verifyIsClean(a);
  console.info(`split brain: ${ok} paid, ${refused} refused for funds, ${retryable} told to retry`);
});
