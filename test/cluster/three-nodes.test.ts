import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { clusterView, shardsSettled, type NodeStatus } from "../support/cluster";
import { verifyIsClean } from "../support/ledger";
import { deleteClusterState } from "../support/nats";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { apiFor, type Api } from "../support/node";
import { startService, type ServiceProcess } from "../support/process";
import { untilDefinite } from "../support/retry";

/**
 * Three real node processes on one Postgres and one NATS (NATS_URL, default 127.0.0.1:4222; .ci/run
 * starts one, and without it these tests fail rather than skip). Wallets are sharded over the
 * nodes; any node answers for any wallet; a node killed with SIGKILL loses its shards to the
 * others within a lease's life, and nothing acknowledged is lost or done twice.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `cofferc${crypto.randomUUID().slice(0, 8)}`;
const SHARDS = 32;
const LEASE_TTL_MS = 2000;

let db: TestDatabase;
const nodes = new Map<string, { service: ServiceProcess; api: Api }>();

async function startNodeProcess(nodeId: string) {
  const service = await startService(db.url, { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: String(LEASE_TTL_MS), NODE_ID: nodeId });
  nodes.set(nodeId, { service, api: apiFor(service.baseUrl) });
}

const api = (nodeId: string) => nodes.get(nodeId)!.api;

/** The cluster as one node sees it. */
const cluster = (via: string): Promise<NodeStatus[]> => clusterView(api(via));

/** Exactly `expected` hold every shard, each shard once (polled, bounded by a few lease lives). */
const settled = (via: string, expected: string[], deadline_ms = LEASE_TTL_MS * 5): Promise<NodeStatus[]> =>
  shardsSettled(() => cluster(via), expected, SHARDS, deadline_ms);

/** Send until a definite answer (a 503 means "ask again, same key"). */
const definite = (send: () => Promise<{ status: number; body: any }>) =>
  untilDefinite(send, (a) => a.status !== 503, { attempts: 40, pauseMs: 100 });

beforeAll(async () => {
  db = await createTestDatabase("cluster");
  await Promise.all(["n1", "n2", "n3"].map(startNodeProcess));
  await settled("n1", ["n1", "n2", "n3"]);
}, 60_000);

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => n.service.kill()));
  await deleteClusterState(PREFIX);
  await db.drop();
});

describe("three nodes", () => {
  test("spread the shards evenly, and any node answers for any wallet", async () => {
    const view = await cluster("n2");
    for (const n of view) expect(n.shards!.length).toBeGreaterThanOrEqual(Math.floor(SHARDS / 3) - 6);
    const wallets = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => (await definite(() => api(`n${(i % 3) + 1}`)("POST", "/v1/wallets", { ownerId: `o${i}`, asset: "USD" }))).body.id as string),
    );
    for (const [i, id] of wallets.entries()) {
      expect((await definite(() => api(`n${((i + 1) % 3) + 1}`)("POST", `/v1/wallets/${id}/credits`, { amount: "10.00" }))).status).toBe(201);
      expect((await definite(() => api(`n${((i + 2) % 3) + 1}`)("POST", `/v1/wallets/${id}/payments`, { amount: "2.50" }))).status).toBe(201);
    }
    for (const id of wallets) expect((await api("n3")("GET", `/v1/wallets/${id}`)).body.balance.posted).toBe("7.50");
  });

  test("a node killed mid-load loses its shards to the others; nothing acknowledged is lost or doubled", async () => {
    const wallets = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const id = (await definite(() => api("n1")("POST", "/v1/wallets", { ownerId: `k${i}`, asset: "USD" }))).body.id as string;
        expect((await definite(() => api("n1")("POST", `/v1/wallets/${id}/credits`, { amount: "100.00" }))).status).toBe(201);
        return id;
      }),
    );
    const acked: { key: string; walletId: string; body: any }[] = [];
    const transfers: string[] = [];
    let killedAt = 0;
    const load = async (lane: number) => {
      for (let i = 0; i < 25; i++) {
        const via = killedAt ? (lane % 2 ? "n1" : "n3") : `n${(lane % 3) + 1}`;
        const from = wallets[(lane + i) % wallets.length]!;
        const to = wallets[(lane + i + 1) % wallets.length]!;
        const key = `load-${lane}-${i}`;
        const isTransfer = i % 5 === 0;
        const send = () =>
          isTransfer
            ? api(killedAt ? via : via)("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "1.00" }, { key })
            : api(via)("POST", `/v1/wallets/${from}/payments`, { amount: "0.10" }, { key });
        let answer = await send().catch(() => ({ status: 0, body: {} }));
        for (let attempt = 0; attempt < 60 && (answer.status === 503 || answer.status === 0); attempt++) {
          await Bun.sleep(100);
          const retryVia = killedAt ? (lane % 2 ? "n1" : "n3") : via;
          answer = await (isTransfer
            ? api(retryVia)("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "1.00" }, { key })
            : api(retryVia)("POST", `/v1/wallets/${from}/payments`, { amount: "0.10" }, { key })
          ).catch(() => ({ status: 0, body: {} }));
        }
        expect(answer.status).toBe(201);
        if (isTransfer) transfers.push(answer.body.id);
        else acked.push({ key, walletId: from, body: answer.body });
      }
    };
    const lanes = Promise.all(Array.from({ length: 6 }, (_, lane) => load(lane)));
    await Bun.sleep(300); // let the load get going on all three nodes before the kill
    const before = (await cluster("n1")).find((n) => n.nodeId === "n2")!.shards!;
    killedAt = Date.now();
    await nodes.get("n2")!.service.kill();
    await lanes;

    // Its shards are owned elsewhere within the lease's life plus a few seconds.
    const view = await settled("n1", ["n1", "n3"], LEASE_TTL_MS + 8_000);
    const takenOver = view.flatMap((n) => n.shards!);
    for (const s of before) expect(takenOver).toContain(s);
    console.info(`cluster: n2 held ${before.length} shards; all answered again ${Date.now() - killedAt} ms after SIGKILL`);

    // Every acknowledged payment exactly once; every transfer settled; the books balance.
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    try {
      const ids = acked.map((a) => a.body.id as string);
      const [count] = await sql`select count(*)::int as n from journals where id in ${sql(ids)}`;
      expect(count!.n).toBe(ids.length);
      const [payments] = await sql`select count(*)::int as n from journals where kind = 'payment' and wallet_id in ${sql(wallets)}`;
      expect(payments!.n).toBe(acked.length);
      const until = Date.now() + 15_000;
      let pending = transfers.length;
      while (pending > 0 && Date.now() < until) {
        const [row] = await sql`select count(*)::int as n from transfers where id in ${sql(transfers)} and status = 'pending'`;
        pending = row!.n;
        if (pending) await Bun.sleep(200);
      }
      expect(pending).toBe(0);
      const [settledCount] = await sql`select count(*)::int as n from transfers where id in ${sql(transfers)} and status = 'settled'`;
      expect(settledCount!.n).toBe(transfers.length);
    } finally {
      await sql.end();
    }
    await verifyIsClean(api("n3"));
    // Replays on the survivors give the first answers.
    for (const a of acked.slice(0, 20)) {
      const replay = await definite(() => api("n3")("POST", `/v1/wallets/${a.walletId}/payments`, { amount: "0.10" }, { key: a.key }));
      expect(replay.body).toEqual(a.body);
    }
  }, 90_000);

  test("a node that joins takes a fair share of the shards", async () => {
    await startNodeProcess("n4");
    const view = await settled("n4", ["n1", "n3", "n4"]);
    const joined = view.find((n) => n.nodeId === "n4")!;
    expect(joined.shards!.length).toBeGreaterThanOrEqual(Math.floor(SHARDS / 3) - 6);
  }, 60_000);

  test("a node that leaves cleanly hands its shards over sooner than a lease would expire", async () => {
    const leaving = nodes.get("n4")!;
    const before = (await cluster("n4")).find((n) => n.nodeId === "n4")!.shards!; // its own view: the others may be a round behind
    expect(before.length).toBeGreaterThan(0);
    const started = Date.now();
    leaving.service.proc.kill("SIGTERM"); // graceful: drain its actors, release its leases, leave
    await leaving.service.proc.exited;
    nodes.delete("n4");
    const view = await settled("n1", ["n1", "n3"], LEASE_TTL_MS * 3);
    const elapsed = Date.now() - started;
    for (const s of before) expect(view.flatMap((n) => n.shards!)).toContain(s);
    console.info(`cluster: n4 left cleanly; its ${before.length} shards were taken over ${elapsed} ms after SIGTERM`);
    // Handed back, not expired: well under a lease's life after the node was gone.
    expect(elapsed).toBeLessThan(LEASE_TTL_MS);
  }, 60_000);
});
