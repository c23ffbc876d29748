import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { SINGLETONS } from "../../src/workers/ownership";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { deleteClusterState, NATS_URL } from "../support/nats";
import { serveOn, type Side } from "../support/split-brain";

/**
 * Background work is done once, not once per node: three nodes in this process on one database and
 * one NATS; transfers between wallets spread over their shards; every saga step (one per
 * `transfer.reserved` and `transfer.credited` event) is taken by exactly one node, the one holding
 * the shard of the wallet that committed the event. Were two nodes to work the same rows, both
 * would take (and count) the step: the sum would exceed the events. Each singleton job has exactly
 * one holder.
 */
const PREFIX = `cofferonce${crypto.randomUUID().slice(0, 8)}`;
const SHARDS = 16;
const LEASE_TTL_MS = 2_000;
const WALLETS = 12;
const TRANSFERS = 60;

let db: TestDatabase;
let sql: postgres.Sql;
const sides: Side[] = [];

/** Polls (a lease change announces nothing to a test), bounded. */
async function until(deadlineMs: number, ok: () => boolean): Promise<void> {
  const started = Date.now();
  while (!ok()) {
    if (Date.now() - started > deadlineMs) throw new Error(`not within ${deadlineMs} ms`);
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  db = await createTestDatabase("bgonce");
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  const env = { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX, SHARDS: String(SHARDS), LEASE_TTL_MS: String(LEASE_TTL_MS) };
  // One at a time: the first applies the migrations.
  for (const id of ["a", "b", "c"]) sides.push(await serveOn(id, db.url, { ...env, NODE_ID: id }));
  const statuses = () => sides.map((s) => s.node.cluster!.status());
  await until(LEASE_TTL_MS * 5, () => {
    const shards = statuses().flatMap((s) => s.shards);
    const singletons = statuses().flatMap((s) => s.singletons);
    return statuses().every((s) => s.shards.length > 0) && new Set(shards).size === SHARDS && shards.length === SHARDS && singletons.length === SINGLETONS.length;
  });
}, 60_000);

afterAll(async () => {
  for (const s of sides) await s.stop().catch(() => {});
  await sql?.end();
  await deleteClusterState(PREFIX);
  await db.drop();
});

test("every saga step is taken by exactly one node, and every singleton job has one holder", async () => {
  const a = sides[0]!.api;
  const wallets: string[] = [];
  for (let i = 0; i < WALLETS; i++) {
    const created = await a("POST", "/v1/wallets", { ownerId: `once-${i}`, asset: "USD" });
    expect(created.status).toBe(201);
    expect((await a("POST", `/v1/wallets/${created.body.id}/credits`, { amount: "100.00" })).status).toBe(201);
    wallets.push(created.body.id);
  }
  const answers = await Promise.all(
    Array.from({ length: TRANSFERS }, (_, i) =>
      sides[i % sides.length]!.api("POST", "/v1/transfers", { fromWalletId: wallets[i % WALLETS], toWalletId: wallets[(i + 1 + (i % 5)) % WALLETS], amount: "1.00" }),
    ),
  );
  expect(answers.map((r) => r.status)).toEqual(answers.map(() => 201));
  // Each node takes its own part; idle() resolves once no step is pending anywhere.
  expect((await Promise.all(sides.map((s) => s.node.saga.idle(30_000)))).every(Boolean)).toBe(true);

  const [events] = await sql`select count(*)::int as n from outbox where type in ('transfer.reserved', 'transfer.credited')`;
  expect(events!.n).toBe(2 * TRANSFERS);
  const steps = sides.map((s) => s.node.saga.stepsTaken);
  console.info(`saga steps per node: ${sides.map((s, i) => `${s.name} ${steps[i]}`).join(", ")} (events ${events!.n})`);
  expect(steps.reduce((x, y) => x + y, 0)).toBe(events!.n);
  expect(steps.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  for (const id of answers.map((r) => r.body.id as string)) expect((await a("GET", `/v1/transfers/${id}`)).body.status).toBe("settled");

  const holders = sides.flatMap((s) => s.node.cluster!.status().singletons);
  expect(holders.sort()).toEqual([...SINGLETONS].sort());
}, 60_000);
