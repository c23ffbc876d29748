import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { fundedWallet, startTestNode, type ApiResponse, type TestNode } from "../support/node";

/**
 * The actor host's limits, seen from outside: idle actors leave memory and come back from their
 * snapshot, a full mailbox refuses with 503 OVERLOADED instead of queueing without end, the live
 * state is inspectable, and asking after wallets that do not exist leaves nothing behind.
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

/** There is no event for "the actor got this far": poll its live state, a bounded number of times. */
async function until(walletId: string, reached: (s: LiveState) => boolean, node: TestNode = t): Promise<LiveState> {
  let last = await liveState(walletId, node);
  for (let attempt = 0; attempt < 400 && !reached(last); attempt++) {
    await Bun.sleep(5);
    last = await liveState(walletId, node);
  }
  expect(reached(last)).toBe(true);
  return last;
}

/**
 * Holds the wallet's row lock from another connection, so the actor's commit waits on it: the
 * actor is then busy for as long as the test wants, with no timing guesswork.
 */
async function holdWalletRow(walletId: string): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = sql.begin(async (tx) => {
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

const cents = (amount: string) => BigInt(amount.replace(".", ""));
const usd = (minor: bigint) => `${minor / 100n}.${(minor % 100n).toString().padStart(2, "0")}`;

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
    expect({ loaded: after.loaded, version: after.version, posted: after.context?.posted }).toEqual({
      loaded: true,
      version: before.version! + 1,
      posted: "650",
    });
    expect((await stored(id)).version).toBe(after.version!);
  });

  test("an actor with work in hand is not passivated, however long ago it started", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00");
    const lock = await holdWalletRow(id);
    const paying = t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    await until(id, (s) => s.running);

    t.node.host.passivateIdle(Date.now() + FAR_FUTURE_MS);
    expect((await liveState(id)).loaded).toBe(true);
    await lock.release();
    expect((await paying).status).toBe(201);
    expect((await stored(id)).balance.posted).toBe("9.00");
  });

  test("the sweeper drops an actor idle for ACTOR_IDLE_MS on its own, and it comes back intact", async () => {
    const quick = await startTestNode("hostidle", { ACTOR_IDLE_MS: "100" });
    try {
      const id = await fundedWallet(quick.api, "USD", "3.00");
      expect(quick.node.host.inspect(id).loaded).toBe(true); // read in process: no round trip for the sweeper to race
      await until(id, (s) => !s.loaded, quick);
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
    const inFlight = t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" });
    await until(id, (s) => s.running && s.mailboxDepth === 0);
    const waiting = Array.from({ length: MAILBOX_MAX }, () => t.api("POST", `/v1/wallets/${id}/payments`, { amount: "1.00" }));
    const full = await until(id, (s) => s.mailboxDepth === MAILBOX_MAX);
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
    const verify = await t.api("GET", "/admin/verify");
    expect(verify.body).toEqual({ ok: true, mismatches: [] });
  });
});

describe("GET /admin/wallets/:id/state", () => {
  test("shows the machine state, the context with amounts as strings, the version and the mailbox depth", async () => {
    const id = await fundedWallet(t.api, "USD", "10.00", "owner-state");
    const withdrawal = await t.api("POST", `/v1/wallets/${id}/withdrawals`, { amount: "2.00", destination: { type: "bank", account: "12345678" } });
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
        posted: "1000",
        withdrawals: { [withdrawal.body.id]: { amount: "200", status: "requested" } },
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
    // An actor drops itself once its drain loop ends, a turn of the event loop after its last reply.
    for (let turn = 0; turn < 10 && t.node.host.size > size; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(t.node.host.size).toBe(size);
    const [written] = await sql`select
      (select count(*) from idempotency_keys where key like 'probe:%')::int as keys,
      (select count(*) from wallets where id = any(${sql.array(ids)}::uuid[]))::int as wallets`;
    expect({ ...written }).toEqual({ keys: 0, wallets: 0 });
  });
});
