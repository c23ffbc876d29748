import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { connectCommitLane } from "../../actors/commit-queue";
import { nextEvent } from "../support/events";
import { verifyIsClean } from "../support/ledger";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";

/**
 * Chained commits (issue 16): while a wallet's batch N commits, batch N+1 is applied on top of it
 * and sent behind it on the same commit lane. These tests make N's commit wait on a row lock held
 * from another connection, so N+1 is provably on its way before N's answer, and then let N
 * succeed, be fenced (the row's version moved under it: the case where N+1's own version check
 * would pass on a state it was not computed from), or lose its connection.
 */
let t: TestNode;
let sql: postgres.Sql;
beforeAll(async () => {
  t = await startTestNode("chained", { COMMIT_LANES: "2", COMMIT_PIPELINE_DEPTH: "2", ACTOR_CHAIN_MAX: "2" });
  sql = postgres(t.db.url, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await t?.stop();
});

/** Holds the wallet's row lock; `release(during)` runs `during` in the same transaction first. */
async function holdWalletRow(walletId: string) {
  let release!: (during?: (tx: postgres.TransactionSql) => Promise<unknown>) => void;
  const released = new Promise<((tx: postgres.TransactionSql) => Promise<unknown>) | undefined>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = sql.begin(async (tx) => {
    await tx`select 1 from wallets where id = ${walletId} for update`;
    locked();
    const during = await released;
    if (during) await during(tx);
  });
  await isLocked;
  return {
    async release(during?: (tx: postgres.TransactionSql) => Promise<unknown>) {
      release(during);
      await done;
    },
  };
}

const pay = (walletId: string, amount: string, key = crypto.randomUUID()) => t.api("POST", `/v1/wallets/${walletId}/payments`, { amount }, { key });

async function stored(walletId: string) {
  // posted in minor units (cents)
  const [row] = await sql`select posted::text, version::int from wallets where id = ${walletId}`;
  const [journals] = await sql`select count(*)::int as n from journals where wallet_id = ${walletId} and kind = 'payment'`;
  return { posted: row!.posted as string, version: row!.version as number, payments: journals!.n as number };
}

/** Pays once (batch N, held on the lock), then again: the second is cut and sent behind the first before it answers. */
async function twoBehindEachOther(walletId: string, keys = [crypto.randomUUID(), crypto.randomUUID()]) {
  const host = t.node.host;
  const lock = await holdWalletRow(walletId);
  const pipelined = host.commitStats.pipelined;
  const first = nextEvent(host, "batch", (e) => e.id === walletId);
  const answers: { i: number; r: ApiResponse }[] = [];
  const p1 = pay(walletId, "1.00", keys[0]).then((r) => (answers.push({ i: 0, r }), r));
  await first;
  const second = nextEvent(host, "batch", (e) => e.id === walletId);
  const p2 = pay(walletId, "2.00", keys[1]).then((r) => (answers.push({ i: 1, r }), r));
  await second;
  // The batch event comes as the batch is cut; it is handed to the lane in the same turn.
  await new Promise<void>((resolve) => setImmediate(resolve));
  expect(host.commitStats.pipelined).toBe(pipelined + 1);
  expect(answers).toEqual([]);
  expect(host.inspect(walletId)).toMatchObject({ running: true, mailboxDepth: 1 });
  return { lock, p1, p2, keys, answers };
}

describe("a hot wallet's batches commit behind each other", () => {
  test("batch N+1 is sent before N's commit returns, and the callers hear back in order, each after its own commit", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const before = await stored(id);
    const committed: number[] = [];
    const stop = t.node.host.on("committed", (e) => {
      if (e.id === id) committed.push(e.version);
    });
    try {
      const { lock, p1, p2, answers } = await twoBehindEachOther(id);
      await lock.release();
      const [r1, r2] = await Promise.all([p1, p2]);
      expect([r1.status, r1.body.balance.available]).toEqual([201, "9.00"]);
      expect([r2.status, r2.body.balance.available]).toEqual([201, "7.00"]);
      expect(answers.map((a) => a.i)).toEqual([0, 1]);
      expect(committed).toEqual([before.version + 1, before.version + 2]);
    } finally {
      stop();
    }
    expect(await stored(id)).toEqual({ posted: "700", version: before.version + 2, payments: 2 });
    await verifyIsClean(t);
  });

  test("N fenced (the row moved to exactly the version N would have written) fails N+1 too: nothing is acknowledged from the stale state, both are retried and paid once", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const before = await stored(id);
    const { lock, p1, p2 } = await twoBehindEachOther(id);
    // Another writer moves the version on, as a node that won a split brain would. N+1 expects that
    // very version: only the lane's guard stops it from committing on top of N's unwritten state.
    const dropped = nextEvent(t.node.host, "dropped", (e) => e.id === id && e.reason === "stale");
    await lock.release((tx) => tx`update wallets set version = version + 1 where id = ${id}`);
    await dropped;
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.status, r2.status]).toEqual([201, 201]);
    // Retried on a fresh load: whichever went first, the balances they saw are consistent.
    const seen = [r1.body.balance.available, r2.body.balance.available].sort();
    expect([["7.00", "9.00"], ["7.00", "8.00"]]).toContainEqual(seen);
    // The moved version, and one or two batches after it.
    const after = await stored(id);
    expect({ posted: after.posted, payments: after.payments }).toEqual({ posted: "700", payments: 2 });
    expect(after.version).toBeGreaterThanOrEqual(before.version + 2);
    await verifyIsClean(t);
  });

  test("N's key taken meanwhile (another node committed it): N is applied again with the stored outcome, N+1 again from the committed state, and only what committed is remembered", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const probeKey = crypto.randomUUID();
    expect((await pay(id, "0.01", probeKey)).status).toBe(201);
    const [{ scope }] = (await sql`select scope from idempotency_keys where key = ${probeKey}`) as unknown as [{ scope: string }];
    // The first payment's key was committed elsewhere, for another request (another fingerprint),
    // after this node last looked: its actor learns it only from its own commit.
    const keys = [crypto.randomUUID(), crypto.randomUUID()];
    await sql`insert into idempotency_keys (scope, key, fingerprint, status, body) values (${scope}, ${keys[0]!}, 'elsewhere', 201, '{"elsewhere":true}')`;
    const { lock, p1, p2 } = await twoBehindEachOther(id, keys);
    await lock.release();
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.status, r1.body.code]).toEqual([422, "IDEMPOTENCY_CONFLICT"]);
    expect([r2.status, r2.body.balance.available]).toEqual([201, "7.99"]);
    expect(await stored(id)).toMatchObject({ posted: "799", payments: 2 });
    // A retry of the second key replays its answer; the first stays a conflict.
    expect((await pay(id, "2.00", keys[1])).body).toEqual(r2.body);
    expect((await pay(id, "1.00", keys[0])).status).toBe(422);
    await verifyIsClean(t);
  });

  test("N's key taken meanwhile, with a replay cut behind it (nothing to write): N gets the stored outcome, the replay its first answer, and nobody a 503", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const probeKey = crypto.randomUUID();
    const probe = await pay(id, "0.01", probeKey);
    expect(probe.status).toBe(201);
    const [{ scope }] = (await sql`select scope from idempotency_keys where key = ${probeKey}`) as unknown as [{ scope: string }];
    const key = crypto.randomUUID();
    await sql`insert into idempotency_keys (scope, key, fingerprint, status, body) values (${scope}, ${key}, 'elsewhere', 201, '{"elsewhere":true}')`;
    const host = t.node.host;
    const lock = await holdWalletRow(id);
    const first = nextEvent(host, "batch", (e) => e.id === id);
    const p1 = pay(id, "1.00", key);
    await first;
    // Cut while N commits, answered from the actor's recent outcomes: a batch with nothing to write.
    const second = nextEvent(host, "batch", (e) => e.id === id);
    const p2 = pay(id, "0.01", probeKey);
    await second;
    await lock.release();
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.status, r1.body.code]).toEqual([422, "IDEMPOTENCY_CONFLICT"]);
    expect([r2.status, r2.body]).toEqual([201, probe.body]);
    expect(await stored(id)).toMatchObject({ posted: "999", payments: 1 });
    await verifyIsClean(t);
  });

  test("the lane's connection killed with N and N+1 on it: both callers hear 503, retries with the same keys pay each exactly once", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const { lock, p1, p2, keys } = await twoBehindEachOther(id);
    const [waiting] = await sql`select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%coffer_commit%'`;
    expect(waiting).toBeDefined();
    await sql`select pg_terminate_backend(${waiting!.pid}::int)`;
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.status, r1.body.code, r2.status, r2.body.code]).toEqual([503, "UNAVAILABLE", 503, "UNAVAILABLE"]);
    await lock.release();
    expect((await stored(id)).payments).toBe(0);
    const again = await Promise.all([pay(id, "1.00", keys[0]), pay(id, "2.00", keys[1])]);
    expect(again.map((r) => r.status)).toEqual([201, 201]);
    const replays = await Promise.all([pay(id, "1.00", keys[0]), pay(id, "2.00", keys[1])]);
    expect(replays.map((r) => r.body)).toEqual(again.map((r) => r.body));
    expect(await stored(id)).toMatchObject({ posted: "700", payments: 2 });
    await verifyIsClean(t);
  });
});

describe("a commit lane's guard (coffer_commit_on_lane)", () => {
  test("writes only behind the token it expects: a new connection, or a statement behind one that failed, writes nothing", async () => {
    const lane = connectCommitLane(t.db.url);
    const scope = `lane-guard-${crypto.randomUUID()}`;
    const keys = (key: string) => JSON.stringify([{ scope, key, fingerprint: "f", status: 201, body: { ok: true } }]);
    const onLane = (key: string, expectToken: string | null, token: string) =>
      lane`select coffer_commit_on_lane('{}'::jsonb, ${keys(key)}::text::json, ${expectToken}::text, ${token}::text)`.then(
        () => "ok",
        (e: { code?: string }) => e.code,
      );
    const written = async () => (await sql`select key from idempotency_keys where scope = ${scope} order by key`).map((r) => r.key as string);
    try {
      // A new connection holds no token: a statement sent behind another (on the lost one) is refused.
      expect(await onLane("k0", "7.0", "7.1")).toBe("CF412");
      expect(await onLane("k1", null, "7.1")).toBe("ok");
      expect(await onLane("k2", "7.1", "7.2")).toBe("ok");
      // This one fails (its key is taken): its token is rolled back with it...
      expect(await onLane("k1", "7.2", "7.3")).toBe("CF409");
      // ...so the one sent behind it, expecting 7.3, writes nothing, and the lane still holds 7.2.
      expect(await onLane("k4", "7.3", "7.4")).toBe("CF412");
      expect((await lane`select current_setting('coffer.lane', true) as token`)[0]!.token).toBe("7.2");
      expect(await written()).toEqual(["k1", "k2"]);
    } finally {
      await lane.end({ timeout: 1 });
    }
  });
});

describe("under load", () => {
  test("64 concurrent payers of 1.00 on a wallet funded with 40.00: exactly 40 succeed, the rest are refused, in commit order", async () => {
    const id = await fundedWallet(t.api, "USD", "40.00");
    const versions: number[] = [];
    const stop = t.node.host.on("committed", (e) => {
      if (e.id === id) versions.push(e.version);
    });
    const pipelined = t.node.host.commitStats.pipelined;
    let answers: ApiResponse[];
    try {
      answers = await Promise.all(Array.from({ length: 64 }, () => pay(id, "1.00")));
    } finally {
      stop();
    }
    const paid = answers.filter((r) => r.status === 201);
    expect(paid.length).toBe(40);
    expect(answers.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.body.code}`)).toEqual(Array(24).fill("409 INSUFFICIENT_FUNDS"));
    expect(paid.map((r) => cents(r.body.balance.available)).sort((a, b) => Number(a - b))).toEqual(Array.from({ length: 40 }, (_, i) => BigInt(i * 100)));
    // Batches were acknowledged in the order they commit: each one's version after the last.
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    console.info(`64 payers: ${versions.length} batches, ${t.node.host.commitStats.pipelined - pipelined} sent behind another`);
    expect(await stored(id)).toMatchObject({ posted: "0", payments: 40 });
    await verifyIsClean(t);
  });

  test("the same keys sent twice at once, 64 payments over 32 keys: 32 effects, each pair answered identically", async () => {
    const id = await fundedWallet(t.api, "USD", "100.00");
    const keys = Array.from({ length: 32 }, () => crypto.randomUUID());
    const answers = await Promise.all([...keys, ...keys].map((key) => pay(id, "1.00", key)));
    expect(answers.map((r) => r.status)).toEqual(Array(64).fill(201));
    for (let i = 0; i < 32; i++) expect(answers[i + 32]!.body).toEqual(answers[i]!.body);
    expect(await stored(id)).toMatchObject({ posted: "6800", payments: 32 });
    await verifyIsClean(t);
  });
});

function cents(decimal: string): bigint {
  const [whole, fraction = ""] = decimal.split(".");
  return BigInt(whole!) * 100n + BigInt(fraction.padEnd(2, "0"));
}
