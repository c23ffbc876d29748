import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { shardOf } from "../../actors/shards";
import type { Db } from "../../lib/db";
import { EVERYTHING, mineOnly, type Ownership } from "../../src/workers/ownership";
import { createTestDatabase, type TestDatabase } from "../support/db";

/**
 * Background workers read only the outbox rows of the shards their node holds, with the shard
 * computed by the database: it must be exactly actors/shards.ts `shardOf`, or a row would belong
 * to no node (never worked) or to two (worked twice).
 */
let db: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  db = await createTestDatabase("ownership");
  sql = postgres(db.url, { max: 1, onnotice: () => {} });
  await sql.unsafe(await Bun.file(new URL("../../src/db/migrations/030_shard_of.sql", import.meta.url)).text());
});

afterAll(async () => {
  await sql.end();
  await db.drop();
});

test("the database's coffer_shard_of agrees with shardOf for every id and shard count", async () => {
  const ids = [...Array.from({ length: 500 }, () => crypto.randomUUID()), ...Array.from({ length: 500 }, () => Bun.randomUUIDv7()), "a", "wallet-1"];
  for (const count of [256, 32, 7, 1]) {
    const rows = await sql`select id, coffer_shard_of(id, ${count}) as shard from unnest(${sql.array(ids)}::text[]) as t(id)`;
    for (const r of rows) expect([r.id, r.shard]).toEqual([r.id, shardOf(r.id as string, count)]);
  }
});

test("mineOnly reads only this node's shards, everything without a cluster, and nothing when it holds none", async () => {
  await sql`create table outbox_t (seq bigserial primary key, aggregate_id uuid not null)`;
  const ids = Array.from({ length: 200 }, () => crypto.randomUUID());
  await sql`insert into outbox_t (aggregate_id) select unnest(${sql.array(ids)}::uuid[])`;
  const q = sql as unknown as Db;
  const read = async (o: Ownership) => {
    const filter = mineOnly(q, o, "aggregate_id");
    if (!filter) return undefined;
    return (await q`select aggregate_id::text as id from outbox_t where true ${filter}`).map((r) => r.id as string).sort();
  };
  const half: Ownership = { shardCount: 8, shards: () => [0, 1, 2, 3], leads: () => false };
  expect(await read(half)).toEqual(ids.filter((id) => shardOf(id, 8) < 4).sort());
  expect(await read(EVERYTHING)).toEqual([...ids].sort());
  expect(await read({ ...half, shards: () => [] })).toBeUndefined();
});
