import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import postgres from "postgres";
import { expectPaymentsExactlyOnce, timedRequest, verifyIsCleanAfterChaos, type Answer } from "../support/chaos";
import { clusterView, shardsSettled, type NodeStatus } from "../support/cluster";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { startNatsServer, type NatsServer } from "../support/nats";
import { apiFor } from "../support/node";
import { freePort, startService, type ServiceProcess } from "../support/process";
import { untilDefinite as retryUntilDefinite } from "../support/retry";

/**
 * The NATS server under a two-node cluster is SIGKILLed in the middle of a load of payments and
 * started again on the same port and store, twice: once after about a second (the leases outlive
 * the outage) and once after more than a lease's life (every lease expires and must be taken
 * again). Nobody restarts the Coffer nodes: they must reconnect, hold their shards again and answer
 * by themselves. Callers retry with the same key until they hear a definite answer; what they were
 * told must then hold exactly once.
 *
 * The NATS server is this file's own (its own port and store), so the machine's shared server is
 * never touched; the database is a fresh one on the shared Postgres.
 */
const SHARDS = 16;
const LEASE_TTL_MS = 2000;
const PREFIX = `cofferr${crypto.randomUUID().slice(0, 8)}`;
const WALLETS = 8;
const LANES = 8;
const PAYMENTS_PER_LANE = 40;
/** Each kill lands once so many payments were acknowledged (the load is under way), for so long. */
const OUTAGES = [
  { afterAcks: 60, outage_ms: 1_000 },
  { afterAcks: 180, outage_ms: LEASE_TTL_MS + 1_500 },
];
/** A request through a healthy cluster takes milliseconds; the router itself gives up (503) after 3 lease lives. */
const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_ATTEMPTS = 60;
const RETRY_PAUSE_MS = 200;
const LOAD_DEADLINE_MS = 25_000;

interface Payment {
  key: string;
  walletId: string;
  answers: Answer[];
  /** When its first request left, and when its 201 came back (0: never). */
  sentAt: number;
  ackedAt: number;
}

let db: TestDatabase;
let storeDir: string;
const natsPort = freePort();
const natsUrl = `nats://127.0.0.1:${natsPort}`;
let nats: NatsServer | undefined;
const nodes = new Map<string, ServiceProcess>();
let wallets: string[] = [];
const payments: Payment[] = [];
/** When each outage began (SIGKILL) and ended (the restarted server answers JetStream requests). */
const outages: { killedAt: number; restartedAt: number }[] = [];

const last = (p: Payment) => p.answers[p.answers.length - 1]!;
const definite = (a: Answer) => a.status > 0 && a.status !== 503;

/** A connection refused or reset (a node between NATS reconnects) counts as no answer: the caller asks again. */
const request = (nodeId: string, method: "GET" | "POST", path: string, body?: unknown, key?: string): Promise<Answer> =>
  timedRequest(nodes.get(nodeId)!.baseUrl, method, path, { body, key, timeoutMs: REQUEST_TIMEOUT_MS, connectionFailure: "no-answer" });

/** Send until a definite answer, with this file's bounds (see test/support/retry.ts). */
const untilDefinite = (send: () => Promise<Answer>, answers: Answer[] = []) =>
  retryUntilDefinite(send, definite, { attempts: RETRY_ATTEMPTS, pauseMs: RETRY_PAUSE_MS }, answers);

/** Both nodes listed, each holding some shards, every shard held by exactly one (bounded: a few lease lives). */
const settled = (): Promise<NodeStatus[]> => shardsSettled(() => clusterView(apiFor(nodes.get("n1")!.baseUrl)), ["n1", "n2"], SHARDS, LEASE_TTL_MS * 5);

async function killNats(): Promise<void> {
  await nats?.kill();
}

/** LANES callers, each paying PAYMENTS_PER_LANE times (alternating nodes), retrying each to a definite answer. */
async function load(onAck: (acks: number) => void): Promise<void> {
  const deadline = Date.now() + LOAD_DEADLINE_MS;
  let acks = 0;
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      for (let i = 0; i < PAYMENTS_PER_LANE && Date.now() < deadline; i++) {
        const key = `natsrestart-${lane}-${i}-${crypto.randomUUID()}`;
        const payment: Payment = { key, walletId: wallets[(lane + i) % WALLETS]!, answers: [], sentAt: Date.now(), ackedAt: 0 };
        payments.push(payment);
        const via = (lane + i) % 2 ? "n1" : "n2";
        const answer = await untilDefinite(() => request(via, "POST", `/v1/wallets/${payment.walletId}/payments`, { amount: "0.10", reference: payment.key }, payment.key), payment.answers);
        if (answer.status === 201) {
          payment.ackedAt = Date.now();
          onAck(++acks);
        }
      }
    }),
  );
}

beforeAll(async () => {
  storeDir = mkdtempSync(join(tmpdir(), "coffer-nats-"));
  nats = await startNatsServer(natsPort, storeDir);
  db = await createTestDatabase("natsrestart");
  const env = { NATS_URL: natsUrl, NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: String(LEASE_TTL_MS) };
  await Promise.all(["n1", "n2"].map(async (nodeId) => nodes.set(nodeId, await startService(db.url, { ...env, NODE_ID: nodeId }))));
  await settled();

  wallets = await Promise.all(
    Array.from({ length: WALLETS }, async (_, i) => {
      const created = await untilDefinite(() => request(i % 2 ? "n1" : "n2", "POST", "/v1/wallets", { ownerId: `natsrestart-${i}`, asset: "USD" }, `natsrestart-wallet-${i}`));
      expect(created.status).toBe(201);
      const funded = await untilDefinite(() => request(i % 2 ? "n2" : "n1", "POST", `/v1/wallets/${created.body.id}/credits`, { amount: "100.00" }, `natsrestart-fund-${i}`));
      expect(funded.status).toBe(201);
      return created.body.id as string;
    }),
  );

  let chaos = Promise.resolve();
  await load((acks) => {
    const planned = OUTAGES.find((o) => o.afterAcks === acks);
    if (!planned) return;
    chaos = chaos.then(async () => {
      const killedAt = Date.now();
      await killNats();
      await Bun.sleep(planned.outage_ms); // the outage itself: there is nothing to wait for but time
      nats = await startNatsServer(natsPort, storeDir);
      outages.push({ killedAt, restartedAt: Date.now() });
    });
  });
  await chaos;
}, 40_000);

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => n.kill()));
  await killNats();
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  await db?.drop();
});

describe("the NATS server SIGKILLed mid-load and restarted on the same port and store", () => {
  test("both kills landed with payments in flight, and payments were acknowledged after each restart", () => {
    expect(payments.length).toBe(LANES * PAYMENTS_PER_LANE);
    expect(outages.length).toBe(OUTAGES.length);
    for (const [i, { killedAt, restartedAt }] of outages.entries()) {
      const next = outages[i + 1]?.killedAt ?? Infinity;
      const inFlightAtKill = payments.filter((p) => p.sentAt <= killedAt && !(p.ackedAt && p.ackedAt <= killedAt)).length;
      const ackedAfter = payments.filter((p) => p.ackedAt > restartedAt && p.ackedAt < next);
      expect(inFlightAtKill).toBeGreaterThan(0);
      expect(ackedAfter.length).toBeGreaterThan(0);
      const firstAfter = Math.min(...ackedAfter.map((p) => p.ackedAt));
      console.info(
        `nats restart ${i + 1}: down ${restartedAt - killedAt} ms, ${inFlightAtKill} payments in flight at the kill; ` +
          `first ack ${firstAfter - restartedAt} ms after the restart, ${ackedAfter.length} acked before the next kill`,
      );
    }
    console.info(`nats restart: ${payments.filter((p) => p.answers.length > 1).length} of ${payments.length} payments needed a retry`);
  });

  test("every payment got a definite answer by retrying its key, and no answer was a 500", () => {
    expect(payments.filter((p) => last(p).status !== 201).map((p) => ({ key: p.key, answers: p.answers.map((a) => `${a.status} ${a.body.code ?? ""}`) }))).toEqual([]);
    const bad = payments.flatMap((p) => p.answers).filter((a) => a.status >= 500 && !(a.status === 503 && a.body.code === "UNAVAILABLE"));
    expect(bad).toEqual([]);
  });

  test("every acknowledged payment is in the ledger exactly once, and nothing else is", async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const acked = payments.filter((p) => last(p).status === 201);
      await expectPaymentsExactlyOnce(sql, acked.map((p) => ({ key: p.key, journalId: last(p).body.id })));
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test("every key replays its answer on either node, and the verifier is clean", async () => {
    const differs: unknown[] = [];
    await Promise.all(
      Array.from({ length: LANES }, async (_, lane) => {
        for (let i = lane; i < payments.length; i += LANES) {
          const p = payments[i]!;
          const replay = await untilDefinite(() => request(i % 2 ? "n2" : "n1", "POST", `/v1/wallets/${p.walletId}/payments`, { amount: "0.10", reference: p.key }, p.key));
          if (replay.status !== last(p).status || !Bun.deepEquals(replay.body, last(p).body)) differs.push({ key: p.key, final: last(p), replay });
        }
      }),
    );
    expect(differs.slice(0, 5)).toEqual([]);
    await verifyIsCleanAfterChaos(() => request("n2", "GET", "/admin/verify"), { attempts: RETRY_ATTEMPTS, pauseMs: RETRY_PAUSE_MS, retry: (a) => !definite(a) });
  });

  test("every event the outbox marked published is in the JetStream stream once after the restart", async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const nc = await connect({ servers: natsUrl });
    try {
      // The relay runs on its own timer and nothing tells the test it caught up: poll (bounded).
      const until = Date.now() + 10_000;
      let unpublished = -1;
      while (unpublished !== 0 && Date.now() < until) {
        unpublished = (await sql`select count(*)::int as n from events e, event_cursors c where c.name = 'relay' and (e.xid, e.seq) > (c.xid, c.seq)`)[0]!.n;
        if (unpublished) await Bun.sleep(100);
      }
      expect(unpublished).toBe(0);
      const outbox = (await sql`select id from events`).map((r) => r.id as string).sort();
      const jsm = await jetstreamManager(nc);
      const stream = `${PREFIX.toUpperCase()}_EVENTS`;
      const { state } = await jsm.streams.info(stream);
      const inStream: string[] = [];
      for (let seq = state.first_seq; seq <= state.last_seq && seq > 0; seq++) {
        const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
        if (msg) inStream.push(msg.header?.get("Nats-Msg-Id") ?? "");
      }
      expect(inStream.sort()).toEqual(outbox);
    } finally {
      await nc.close();
      await sql.end({ timeout: 1 });
    }
  });

  test("the cluster is whole again: every shard held by exactly one node, on a lease renewed since the restart", async () => {
    for (const n of nodes.values()) expect(n.proc.exitCode).toBeNull();
    const { killedAt } = outages[outages.length - 1]!;
    // Leases are renewed on a timer and nothing reports a renewal: poll (bounded) until every lease
    // has lived longer than its TTL, which it can only do by being renewed.
    const until = Date.now() + LEASE_TTL_MS * 5;
    let view = await settled();
    const ages = () => view.flatMap((n) => Object.values(n.leaseAgesMs ?? {}));
    while (Date.now() < until && !ages().every((age) => age > LEASE_TTL_MS)) {
      await Bun.sleep(100);
      view = await settled();
    }
    expect(ages().length).toBe(SHARDS);
    expect(ages().filter((age) => age <= LEASE_TTL_MS)).toEqual([]);
    // Whether a lease outlives an outage longer than its TTL depends on when the restarted server
    // expires it: the holder either renews it (nobody else could have taken it) or takes it again.
    const sinceKill = Date.now() - killedAt;
    console.info(`nats restart: ${ages().filter((age) => age < sinceKill).length} of ${SHARDS} leases were taken again after the long outage`);
  });
});
