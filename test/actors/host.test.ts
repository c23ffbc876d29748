import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { collectEvents, nextEvent } from "../support/events";
import { verifyIsClean } from "../support/ledger";
import { cents, usd } from "../support/money";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";

/**
 * The actor host's limits, seen from outside: idle actors leave memory and come back from their
 * snapshot, a full mailbox, a node at its live-actor cap with every actor busy and a full commit
 * queue each refuse with 503 OVERLOADED instead of queueing without end, the live state is
 * inspectable, what the actors do is reported to listeners (which the tests here wait on instead
 * of polling), and asking after wallets that do not exist leaves nothing behind.
 */
const MAILBOX_MAX = 5;
/** Long enough that the sweeper never drops an actor in the middle of a test on this node. */
const IDLE_MS = 60_000;
const FAR_FUTURE_MS = 10 * IDLE_MS;

let t: TestNode;
let sql: postgres.Sql;
beforeAll(async () => {
  t = await startTestNode("host", { ACTOR_MAILBOX_MAX: String(MAILBOX_MAX), ACTOR_IDLE_MS: String(IDLE_MS) });
  sql = postgres(t.db.url, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await t?.stop();
});

interface LiveState {
  walletId: string;
  loaded: boolean;
  state: string | null;
  context: Record<string, unknown> | null;
  version: number | null;
  mailboxDepth: number;
  running: boolean;
}

async function liveState(walletId: string, node: TestNode = t): Promise<LiveState> {
  const res = await node.api("GET", `/admin/wallets/${walletId}/state`);
  expect(res.status).toBe(200);
  return res.body;
}

async function stored(walletId: string, node: TestNode = t) {
  const res = await node.api("GET", `/v1/wallets/${walletId}`);
  expect(res.status).toBe(200);
  return res.body as { status: string; balance: { posted: string; held: string; available: string }; version: number };
}

/**
 * Holds the wallet's row lock from another connection, so the actor's commit waits on it: the
 * actor is then busy for as long as the test wants, with no timing guesswork.
 */
async function holdWalletRow(walletId: string, on: postgres.Sql = sql): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = on.begin(async (tx) => {
    await tx`select 1 from wallets where id = ${walletId} for update`;
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await done;
    },
  };
}


function expectOverloaded(r: ApiResponse): void {
  expect(r.status).toBe(503);
  expect(r.headers.get("content-type")).toStartWith("application/problem+json");
  expect(r.body).toMatchObject({ status: 503, code: "OVERLOADED", type: "https://coffer.dev/problems/overloaded" });
}

describe("passivation", () => {
  test("an idle actor is dropped and the next command reloads it from its snapshot with the right balance and version", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    expect((await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.50" })).status).toBe(201);
    const before = await liveState(id);
    expect(before.loaded).toBe(true);
    const size = t.node.host.size;

    expect(t.node.host.passivateIdle(Date.now() + FAR_FUTURE_MS)).toBeGreaterThanOrEqual(1);
    expect(t.node.host.size).toBeLessThan(size);
    expect(await liveState(id)).toEqual({ walletId: id, loaded: false, state: null, context: null, version: null, mailboxDepth: 0, running: false });

    const paid = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    expect({ status: paid.status, available: paid.body.balance.available }).toEqual({ status: 201, available: "6.50" });
    const after = await liveState(id);
    expect({ loaded: after.loaded, version: after.version, posted: after.context?.postedMinor }).toEqual({
      loaded: true,
      version: before.version! + 1,
      posted: "650",
    });
    expect((await stored(id)).version).toBe(after.version!);
  });

  test("an actor with work in hand is not passivated, however long ago it started", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const lock = await holdWalletRow(id);
    const started = nextEvent(t.node.host, "batch", (e) => e.id === id);
    const paying = t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    await started;
    expect((await liveState(id)).running).toBe(true);

    t.node.host.passivateIdle(Date.now() + FAR_FUTURE_MS);
    expect((await liveState(id)).loaded).toBe(true);
    await lock.release();
    expect((await paying).status).toBe(201);
    expect((await stored(id)).balance.posted).toBe("9.00");
  });

  test("an actor idle for ACTOR_HIBERNATE_MS lets go of its machine and recent outcomes, yet replays byte for byte and pays on", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const key = crypto.randomUUID();
    const first = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.50" }, { key });
    expect(first.status).toBe(201);
    const hibernated = nextEvent(t.node.host, "hibernated", (e) => e.id === id);
    // Past the hibernation delay (1 s by default), well before the idle drop.
    t.node.host.passivateIdle(Date.now() + 1_001);
    await hibernated;
    expect((await liveState(id)).loaded).toBe(true);

    // The replay is no longer in memory: it comes from Postgres, the same answer (keys in order), nothing paid twice.
    const again = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "2.50" }, { key });
    expect({ status: again.status, body: JSON.stringify(again.body) }).toEqual({ status: first.status, body: JSON.stringify(first.body) });
    const paid = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    expect({ status: paid.status, available: paid.body.balance.available }).toEqual({ status: 201, available: "6.50" });
    expect((await stored(id)).balance.posted).toBe("6.50");
  });

  test("the sweeper drops an actor idle for ACTOR_IDLE_MS on its own, and it comes back intact", async () => {
    const quick = await startTestNode("hostidle", { ACTOR_IDLE_MS: "100" });
    try {
      let id = "";
      const passivated = nextEvent(quick.node.host, "dropped", (e) => e.id === id && e.reason === "idle");
      id = await fundedWallet(quick.api, "USD", "3.00");
      expect(quick.node.host.inspect(id).loaded).toBe(true); // read in process: no round trip for the sweeper to race
      await passivated;
      expect((await liveState(id, quick)).loaded).toBe(false);
      const paid = await quick.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
      expect({ status: paid.status, available: paid.body.balance.available }).toEqual({ status: 201, available: "2.00" });
      expect((await stored(id, quick)).version).toBe((await liveState(id, quick)).version!);
    } finally {
      await quick.stop();
    }
  });
});

describe("the mailbox limit", () => {
  test(`with ${MAILBOX_MAX} commands waiting behind a busy actor, the next one gets 503 OVERLOADED and leaves no trace`, async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const lock = await holdWalletRow(id);
    const started = nextEvent(t.node.host, "batch", (e) => e.id === id && e.size === 1);
    const inFlight = t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    await started; // the one payment left the mailbox and waits on the row lock to commit
    const filled = nextEvent(t.node.host, "queued", (e) => e.id === id && e.depth === MAILBOX_MAX);
    const waiting = Array.from({ length: MAILBOX_MAX }, () => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }));
    await filled;
    const full = await liveState(id);
    expect(full.mailboxDepth).toBe(MAILBOX_MAX);
    expect({ loaded: full.loaded, state: full.state, running: full.running }).toEqual({ loaded: true, state: "active", running: true });

    const refusedKey = crypto.randomUUID();
    expectOverloaded(await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }, { key: refusedKey }));

    await lock.release();
    const answers = await Promise.all([inFlight, ...waiting]);
    expect(answers.map((r) => r.status)).toEqual(Array(1 + MAILBOX_MAX).fill(201));
    expect((await liveState(id)).mailboxDepth).toBe(0);
    // OVERLOADED stored nothing under its key: the retry is a first attempt and takes effect once.
    const retried = await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }, { key: refusedKey });
    expect({ status: retried.status, available: retried.body.balance.available }).toEqual({ status: 201, available: "3.00" });
    expect((await stored(id)).balance.posted).toBe("3.00");
  });

  test(`200 payments at once on one wallet with a mailbox of ${MAILBOX_MAX}: some are OVERLOADED, the rest are right and the books add up`, async () => {
    const FUNDING = 100_000n; // 1,000.00: every payment below is affordable
    const id = await fundedWallet(t.api, "USD", usd(FUNDING));
    const amounts = Array.from({ length: 200 }, (_, i) => BigInt(1 + ((i * 7919) % 500))); // 0.01 .. 5.00
    const keys = amounts.map(() => crypto.randomUUID());
    const pay = (i: number) => t.api("POST", `/v1/wallets/${id}/payments`, { amount: usd(amounts[i]!) }, { key: keys[i]! });
    const answers = await Promise.all(amounts.map((_, i) => pay(i)));

    const paid = answers.flatMap((r, i) => (r.status === 201 ? [i] : []));
    const overloaded = answers.flatMap((r, i) => (r.status === 201 ? [] : [i]));
    console.info(`mailbox ${MAILBOX_MAX}: ${paid.length} paid, ${overloaded.length} overloaded`);
    expect(paid.length).toBeGreaterThan(0);
    expect(overloaded.length).toBeGreaterThan(0);
    for (const i of overloaded) expectOverloaded(answers[i]!);
    for (const i of paid) expect(cents(answers[i]!.body.amount)).toBe(amounts[i]!);
    // Every success reports a different balance after it: no two were applied to the same state.
    expect(new Set(paid.map((i) => answers[i]!.body.balance.available)).size).toBe(paid.length);

    const debited = paid.reduce((sum, i) => sum + amounts[i]!, 0n);
    expect(cents((await stored(id)).balance.posted)).toBe(FUNDING - debited);
    const [journals] = await sql`select count(*)::int as n from journals where wallet_id = ${id} and kind = 'payment'`;
    expect(journals!.n).toBe(paid.length);

    // Refused callers retry with their keys, one at a time: each takes effect exactly once.
    for (const i of overloaded) expect((await pay(i)).status).toBe(201);
    const total = amounts.reduce((sum, a) => sum + a, 0n);
    expect(cents((await stored(id)).balance.posted)).toBe(FUNDING - total);
    await verifyIsClean(t);
  });
});

describe("GET /admin/wallets/:id/state", () => {
  test("shows the machine state, the context with every amount both in minor units and as a decimal, the version and the mailbox depth", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00", "owner-state");
    const withdrawal = await t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "2.00", destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } });
    expect(withdrawal.status).toBe(201);
    expect((await t.api("POST", `/v1/wallets/${id}/freeze`)).status).toBe(200);

    const live = await liveState(id);
    expect(live).toEqual({
      walletId: id,
      loaded: true,
      state: "frozen",
      context: {
        walletId: id,
        ownerId: "owner-state",
        asset: "USD",
        postedMinor: "1000",
        posted: "10.00",
        withdrawals: { [withdrawal.body.id]: { amountMinor: "200", amount: "2.00", status: "requested" } },
        outgoing: {},
      },
      version: (await stored(id)).version,
      mailboxDepth: 0,
      running: false,
    });
  });
});

describe("unknown wallets", () => {
  test("100 unknown wallet ids probed through every route answer 404 and leave no actor loaded", async () => {
    const size = t.node.host.size;
    const ids = Array.from({ length: 100 }, () => crypto.randomUUID());
    const answers = await Promise.all(
      ids.flatMap((id) => [
        t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }),
        t.api("POST", `/v1/wallets/${id}/credits`, { amount: "1.00" }),
        t.api("POST", `/v1/wallets/${id}/freeze`),
        t.api("GET", `/v1/wallets/${id}`),
      ]),
    );
    expect(new Set(answers.map((r) => `${r.status} ${r.body.code}`))).toEqual(new Set(["404 WALLET_NOT_FOUND"]));
    for (const id of ids.slice(0, 10)) expect((await liveState(id)).loaded).toBe(false);
    expect(t.node.host.size).toBe(size);
  });

  test("a command that reaches an actor for an unknown wallet is refused, writes nothing and the actor is dropped", async () => {
    // The transfer saga (and later NATS) talk to actors directly, without the HTTP edge's lookup.
    const size = t.node.host.size;
    const ids = Array.from({ length: 100 }, () => crypto.randomUUID());
    const probed = new Set<string>(ids);
    // An actor drops itself once its drain loop ends, a turn of the event loop after its last reply.
    const dropped = collectEvents(t.node.host, "dropped", (e) => probed.has(e.id) && e.reason === "unknown", ids.length);
    const outcomes = await Promise.all(
      ids.map((id) =>
        t.node.ops.system(id, `probe:${id}`, {
          type: "transfer.credit",
          transferId: crypto.randomUUID(),
          journalId: crypto.randomUUID(),
          fromWalletId: crypto.randomUUID(),
          asset: "USD",
          amount: 100n,
          at: new Date().toISOString(),
        }),
      ),
    );
    expect(new Set(outcomes.map((o) => `${o.status} ${o.body.code}`))).toEqual(new Set(["404 WALLET_NOT_FOUND"]));
    expect(new Set((await dropped).map((e) => e.id))).toEqual(probed);
    expect(t.node.host.size).toBe(size);
    const [written] = await sql`select
      (select count(*) from idempotency_keys where key like 'probe:%')::int as keys,
      (select count(*) from wallets where id = any(${sql.array(ids)}::uuid[]))::int as wallets`;
    expect({ ...written }).toEqual({ keys: 0, wallets: 0 });
  });
});

describe("what the host tells its listeners", () => {
  test("a payment is reported queued, cut into a batch and committed, in that order; an unsubscribed listener hears nothing more", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const before = (await liveState(id)).version!;
    const heard: string[] = [];
    const stops = (["queued", "batch", "committed", "dropped"] as const).map((type) =>
      t.node.host.on(type, (e) => {
        if (e.id === id) heard.push(JSON.stringify(e));
      }),
    );
    try {
      expect((await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" })).status).toBe(201);
      expect(heard.map((e) => JSON.parse(e))).toEqual([
        { type: "queued", id, kind: "wallet", depth: 1 },
        { type: "batch", id, kind: "wallet", size: 1 },
        { type: "committed", id, kind: "wallet", version: before + 1, commands: ["wallet.payment"] },
      ]);
      expect(t.node.host.passivateIdle(Date.now() + FAR_FUTURE_MS)).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(heard[heard.length - 1]!)).toEqual({ type: "dropped", id, kind: "wallet", reason: "idle" });
    } finally {
      for (const stop of stops) stop();
    }
    const count = heard.length;
    expect((await t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" })).status).toBe(201);
    expect(heard.length).toBe(count);
  });

  test("listeners are bounded: one past the ceiling is refused loudly, and unsubscribing makes room", () => {
    const stops: (() => void)[] = [];
    try {
      expect(() => {
        for (let i = 0; i < 1_000; i++) stops.push(t.node.host.on("committed", () => {}));
      }).toThrow("listeners");
      expect(stops.length).toBeLessThan(1_000);
      stops.pop()!();
      stops.push(t.node.host.on("committed", () => {}));
    } finally {
      for (const stop of stops) stop();
    }
  });
});

describe("the live-actor cap (ACTORS_MAX)", () => {
  const CAP = 2;
  let capped: TestNode;
  let cappedSql: postgres.Sql;
  beforeAll(async () => {
    capped = await startTestNode("hostcap", { ACTORS_MAX: String(CAP), ACTOR_IDLE_MS: String(IDLE_MS) });
    cappedSql = postgres(capped.db.url, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await cappedSql?.end({ timeout: 1 });
    await capped?.stop();
  });

  test(`past ${CAP} live actors the least recently used idle one is passivated to make room, and comes back intact`, async () => {
    const host = capped.node.host;
    const evicted: string[] = [];
    const stop = host.on("dropped", (e) => {
      if (e.reason === "evicted") evicted.push(e.id);
    });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        ids.push(await fundedWallet(capped.api, "USD", "10.00"));
        expect(host.size).toBeLessThanOrEqual(CAP);
      }
    } finally {
      stop();
    }
    expect(evicted).toEqual(ids.slice(0, 2));
    expect(host.inspect(ids[0]!).loaded).toBe(false);

    const paid = await capped.api("POST", `/v1/wallets/${ids[0]}/payments`, { amount: "2.50" });
    expect({ status: paid.status, available: paid.body.balance.available }).toEqual({ status: 201, available: "7.50" });
    expect(host.size).toBe(CAP);
    expect((await stored(ids[0]!, capped)).version).toBe((await liveState(ids[0]!, capped)).version!);
  });

  test("when every live actor has work in hand, a command for another one is answered 503 OVERLOADED and no actor is made for it", async () => {
    const host = capped.node.host;
    const [a, b, c] = [await fundedWallet(capped.api, "USD", "10.00"), await fundedWallet(capped.api, "USD", "10.00"), await fundedWallet(capped.api, "USD", "10.00")];
    const locks = [await holdWalletRow(a, cappedSql), await holdWalletRow(b, cappedSql)];
    const busy = collectEvents(host, "batch", (e) => e.id === a || e.id === b, 2);
    const paying = [a, b].map((id) => capped.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }));
    await busy; // both wait on their row locks to commit: neither may be passivated
    expect(host.size).toBe(CAP);

    const key = crypto.randomUUID();
    expectOverloaded(await capped.api("POST", `/v1/wallets/${c}/payments`, { amount: "1.00" }, { key }));
    expect(host.size).toBe(CAP);
    expect(host.inspect(c).loaded).toBe(false);

    for (const lock of locks) await lock.release();
    expect((await Promise.all(paying)).map((r) => r.status)).toEqual([201, 201]);
    // OVERLOADED stored nothing under its key: the retry takes effect once.
    const retried = await capped.api("POST", `/v1/wallets/${c}/payments`, { amount: "1.00" }, { key });
    expect({ status: retried.status, available: retried.body.balance.available }).toEqual({ status: 201, available: "9.00" });
    expect(host.size).toBeLessThanOrEqual(CAP);
    await verifyIsClean(capped);
  });
});

describe("the commit queue's waiting list (COMMIT_WAITING_MAX)", () => {
  test("with one commit in flight and one waiting, a third wallet's batch is answered 503 OVERLOADED, writes nothing, and its retry commits once", async () => {
    const q = await startTestNode("hostqueue", { COMMIT_IN_FLIGHT_MAX: "1", COMMIT_WAITING_MAX: "1" });
    const qSql = postgres(q.db.url, { max: 2, onnotice: () => {} });
    try {
      const host = q.node.host;
      const [a, b, c] = [await fundedWallet(q.api, "USD", "10.00"), await fundedWallet(q.api, "USD", "10.00"), await fundedWallet(q.api, "USD", "10.00")];
      const versionOfC = (await liveState(c, q)).version!;
      const lock = await holdWalletRow(a, qSql);
      // A's commit is in flight (waiting on the row lock); B's batch waits behind it. Each batch is
      // handed to the queue in the same turn as its "batch" event (both actors are loaded).
      const aInFlight = nextEvent(host, "batch", (e) => e.id === a);
      const payA = q.api("POST", `/v1/wallets/${a}/payments`, { amount: "1.00" });
      await aInFlight;
      const bWaiting = nextEvent(host, "batch", (e) => e.id === b);
      const payB = q.api("POST", `/v1/wallets/${b}/payments`, { amount: "1.00" });
      await bWaiting;

      const key = crypto.randomUUID();
      expectOverloaded(await q.api("POST", `/v1/wallets/${c}/payments`, { amount: "1.00" }, { key }));
      expect(host.commitStats.refused).toBe(1);
      // The refused wallet's actor stays, at its committed state.
      expect(await liveState(c, q)).toMatchObject({ loaded: true, version: versionOfC, mailboxDepth: 0 });

      await lock.release();
      expect([(await payA).status, (await payB).status]).toEqual([201, 201]);
      const retried = await q.api("POST", `/v1/wallets/${c}/payments`, { amount: "1.00" }, { key });
      expect({ status: retried.status, available: retried.body.balance.available }).toEqual({ status: 201, available: "9.00" });
      expect((await stored(c, q)).version).toBe(versionOfC + 1);
      await verifyIsClean(q);
    } finally {
      await qSql.end({ timeout: 1 });
      await q.stop();
    }
  });
});
