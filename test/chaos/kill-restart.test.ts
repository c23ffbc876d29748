import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { forEachBounded } from "../support/bounded";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { verifyIsClean } from "../support/ledger";
import { cents, usd } from "../support/money";
import { apiFor, type Api } from "../support/node";
import { startService, type ServiceProcess } from "../support/process";

/**
 * The real service, as a subprocess, is SIGKILLed while a mixed load of payments, credits,
 * withdrawals and transfers is in flight, then started again on the same database. What callers
 * were told before the kill must still hold; what they were not told must resolve to one effect.
 */
const WALLETS = 10;
const FUNDING_MINOR = 100_000n; // 1,000.00 USD per wallet
const IN_FLIGHT = 16;
const KILL_AFTER_ACKS = 300;
const MAX_REQUESTS = 5_000; // a ceiling on the load loop should the kill never trigger
const SETTLE_TIMEOUT_MS = 20_000;
/** Per test: bun's default is 5 s, and a test that times out has its subprocesses killed by bun. */
const TEST_TIMEOUT_MS = 30_000;

type Kind = "fund" | "credit" | "payment" | "withdrawal" | "complete" | "transfer";
interface Answer {
  status: number;
  body: any;
}
interface Op {
  kind: Kind;
  key: string;
  path: string;
  body: unknown;
  walletId: string;
  /** acked: 2xx; refused: a definite 4xx; unknown: no answer (connection lost) or a 5xx. */
  fate: "acked" | "refused" | "unknown";
  first?: Answer;
  /** What the request finally did: its first answer, or for an unknown one the answer to its re-send. */
  final?: Answer;
}

let db: TestDatabase;
let sql: postgres.Sql;
const services: ServiceProcess[] = [];
let api: Api;
let wallets: string[] = [];
const ops: Op[] = [];
let inFlightAtKill = 0;
/** Transfers the kill caught between reserve and settle: the restarted saga must finish them. */
let pendingAtKill: string[] = [];

const randomAmount = (max_minor: number) => usd(BigInt(1 + Math.floor(Math.random() * max_minor)));
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const ok = (a?: Answer) => a !== undefined && a.status >= 200 && a.status < 300;

async function send(target: Api, op: Pick<Op, "key" | "path" | "body">): Promise<Answer> {
  const res = await target("POST", op.path, op.body, { key: op.key });
  return { status: res.status, body: res.body };
}

function newOp(kind: Kind, walletId: string, path: string, body: unknown): Op {
  return { kind, key: `${kind}-${crypto.randomUUID()}`, path, body, walletId, fate: "unknown" };
}

/** Fire the mixed load; SIGKILL the service from inside the ack that reaches KILL_AFTER_ACKS. */
async function loadUntilKilled(service: ServiceProcess): Promise<void> {
  const openWithdrawals: { id: string; walletId: string }[] = [];
  let acks = 0;
  let inFlight = 0;
  let killed = false;

  const nextOp = (): Op => {
    const from = pick(wallets);
    const roll = Math.random();
    if (openWithdrawals.length && roll < 0.1) {
      const w = openWithdrawals.splice(Math.floor(Math.random() * openWithdrawals.length), 1)[0]!;
      return newOp("complete", w.walletId, `/v1/withdrawals/${w.id}/complete`, undefined);
    }
    if (roll < 0.35) return newOp("payment", from, `/v1/wallets/${from}/payments`, { amount: randomAmount(500) });
    if (roll < 0.5) return newOp("credit", from, `/v1/wallets/${from}/credits`, { amount: randomAmount(500) });
    if (roll < 0.65) {
      return newOp("withdrawal", from, `/v1/wallets/${from}/withdrawals`, { amount: randomAmount(500), destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } });
    }
    const to = pick(wallets.filter((w) => w !== from));
    return newOp("transfer", from, "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: randomAmount(500) });
  };

  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (!killed && ops.length < MAX_REQUESTS) {
      const op = nextOp();
      ops.push(op);
      inFlight++;
      try {
        op.first = await send(api, op);
        op.fate = ok(op.first) ? "acked" : op.first.status >= 500 ? "unknown" : "refused";
        if (op.fate !== "unknown") op.final = op.first;
        if (op.kind === "withdrawal" && op.fate === "acked") openWithdrawals.push({ id: op.first.body.id, walletId: op.walletId });
        if (op.fate === "acked" && ++acks === KILL_AFTER_ACKS) {
          killed = true;
          inFlightAtKill = inFlight - 1;
          service.proc.kill("SIGKILL");
        }
      } catch {
        op.fate = "unknown"; // the connection died with the service: we cannot know what happened
      } finally {
        inFlight--;
      }
    }
  }));
  await service.kill();
}

async function restart(): Promise<void> {
  const service = await startService(db.url);
  services.push(service);
  api = apiFor(service.baseUrl);
}

/** Poll (bounded) until no transfer is pending: the saga runs on its own, with no event to await. */
async function transfersSettled(): Promise<{ id: string; status: string }[]> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const ids = (await sql`select id from transfers order by id`).map((r) => r.id as string);
    const views = await Promise.all(ids.map(async (id) => (await api("GET", `/v1/transfers/${id}`)).body as { id: string; status: string }));
    if (!views.some((t) => t.status === "pending") || Date.now() > deadline) return views;
    await Bun.sleep(100);
  }
}

/** Everything a replay could disturb: row counts and every wallet's balances and version. */
async function ledgerState() {
  const [counts] = await sql`select
    (select count(*) from journals)::int as journals, (select count(*) from postings)::int as postings,
    (select count(*) from withdrawals)::int as withdrawals, (select count(*) from transfers)::int as transfers,
    (select count(*) from idempotency_keys)::int as keys, (select count(*) from events)::int as outbox`;
  const rows = await sql`select id, posted::text, held::text, version::text, status from wallets order by id`;
  return { counts, wallets: rows.map((r) => ({ ...r })) };
}

const finals = (kind: Kind) => ops.filter((o) => o.kind === kind && ok(o.final));

beforeAll(async () => {
  db = await createTestDatabase("killrestart");
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  const first = await startService(db.url);
  services.push(first);
  api = apiFor(first.baseUrl);

  for (let i = 0; i < WALLETS; i++) {
    const created = await api("POST", "/v1/wallets", { ownerId: `chaos-${i}`, asset: "USD" });
    expect(created.status).toBe(201);
    wallets.push(created.body.id);
    const fund = newOp("fund", created.body.id, `/v1/wallets/${created.body.id}/credits`, { amount: usd(FUNDING_MINOR) });
    fund.first = fund.final = await send(api, fund);
    expect(fund.first.status).toBe(201);
    fund.fate = "acked";
    ops.push(fund);
  }

  await loadUntilKilled(first);
  pendingAtKill = (await sql`select id from transfers where status = 'pending'`).map((r) => r.id as string);
  await restart();
}, 40_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.kill()));
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

describe("the service SIGKILLed in the middle of a load and restarted", () => {
  test("the kill landed with requests in flight, after hundreds were acknowledged", () => {
    expect(ops.filter((o) => o.fate === "acked").length).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(ops.filter((o) => o.fate === "unknown").length).toBeGreaterThan(0);
  }, TEST_TIMEOUT_MS);

  test("every acknowledged operation is in the ledger exactly once after the restart", async () => {
    const journals = new Map((await sql`select id, kind, wallet_id from journals`).map((r) => [r.id as string, r]));
    const listed = new Map<string, number>();
    for (const walletId of wallets) {
      let cursor: string | null = null;
      for (let page = 0; page < 1_000; page++) {
        const res = await api("GET", `/v1/wallets/${walletId}/transactions?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.status).toBe(200);
        for (const item of res.body.items) listed.set(`${walletId}/${item.id}`, (listed.get(`${walletId}/${item.id}`) ?? 0) + 1);
        cursor = res.body.nextCursor;
        if (!cursor) break;
      }
    }
    const completed = new Set(ops.filter((o) => o.kind === "complete" && o.fate === "acked").map((o) => o.first!.body.id as string));
    for (const op of ops.filter((o) => o.fate === "acked")) {
      const id = op.first!.body.id as string;
      if (op.kind === "fund" || op.kind === "credit" || op.kind === "payment") {
        expect(journals.get(id)?.kind).toBe(op.kind === "payment" ? "payment" : "credit");
        expect(journals.get(id)?.wallet_id).toBe(op.walletId);
        expect(listed.get(`${op.walletId}/${id}`)).toBe(1);
      } else if (op.kind === "withdrawal" || op.kind === "complete") {
        const w = await api("GET", `/v1/withdrawals/${id}`);
        expect(w.status).toBe(200);
        expect(w.body.amount).toBe(op.first!.body.amount);
        if (completed.has(id)) expect(w.body.status).toBe("completed");
      } else if (op.kind === "transfer") {
        const t = await api("GET", `/v1/transfers/${id}`);
        expect(t.status).toBe(200);
        expect([t.body.fromWalletId, t.body.toWalletId, t.body.amount]).toEqual([op.walletId, (op.body as any).toWalletId, (op.body as any).amount]);
      }
    }
  }, TEST_TIMEOUT_MS);

  test("transfers in flight at the kill finish after the restart: none stays pending", async () => {
    const transfers = await transfersSettled();
    expect(transfers.filter((t) => t.status === "pending")).toEqual([]);
    const caught = new Set(pendingAtKill);
    expect(transfers.filter((t) => caught.has(t.id)).length).toBe(pendingAtKill.length);
    // No wallet here is frozen or closed, so no credit is refused and nothing should be voided.
    expect(transfers.filter((t) => t.status !== "settled")).toEqual([]);
  }, TEST_TIMEOUT_MS);

  test("re-sending every answered request with its key replays the first status and body and changes nothing", async () => {
    const before = await ledgerState();
    const answered = ops.filter((o) => o.fate !== "unknown");
    const differing: { key: string; first: Answer; replay: Answer }[] = [];
    await forEachBounded(answered, IN_FLIGHT, async (op) => {
      const replay = await send(api, op);
      if (!Bun.deepEquals(replay, op.first)) differing.push({ key: op.key, first: op.first!, replay });
    });
    expect(differing.slice(0, 5)).toEqual([]);
    expect(await ledgerState()).toEqual(before);
  }, TEST_TIMEOUT_MS);

  test("re-sending each request whose fate the kill left unknown has at most one effect", async () => {
    const unknown = ops.filter((o) => o.fate === "unknown");
    await forEachBounded(unknown, IN_FLIGHT, async (op) => {
      op.final = await send(api, op);
    });
    expect(unknown.filter((o) => o.final!.status >= 500).map((o) => o.final)).toEqual([]);
    // A second re-send is a replay of the first one.
    const again = await Promise.all(unknown.map((op) => send(api, op)));
    expect(again).toEqual(unknown.map((o) => o.final!));
    await transfersSettled();

    // The ledger holds exactly the effects callers were (finally) told about: nothing doubled, nothing extra.
    const idsOf = (rows: postgres.RowList<postgres.Row[]>) => rows.map((r) => r.id as string).sort();
    const answeredIds = (...kinds: Kind[]) => kinds.flatMap((k) => finals(k).map((o) => o.final!.body.id as string)).sort();
    expect(idsOf(await sql`select id from journals where kind = 'credit'`)).toEqual(answeredIds("fund", "credit"));
    expect(idsOf(await sql`select id from journals where kind = 'payment'`)).toEqual(answeredIds("payment"));
    expect(idsOf(await sql`select id from withdrawals`)).toEqual(answeredIds("withdrawal"));
    expect(idsOf(await sql`select id from withdrawals where status = 'completed'`)).toEqual(answeredIds("complete"));
    expect((await sql`select count(*)::int as n from journals where kind = 'withdrawal'`)[0]!.n).toBe(finals("complete").length);
    expect(idsOf(await sql`select id from transfers`)).toEqual(answeredIds("transfer"));
    expect((await sql`select count(*)::int as n from journals where kind = 'transfer_reserve'`)[0]!.n).toBe(finals("transfer").length);
    expect((await sql`select count(*)::int as n from journals where kind = 'transfer_credit'`)[0]!.n).toBe(finals("transfer").length);
  }, TEST_TIMEOUT_MS);

  test("the verifier is clean and every balance equals what the answered operations add up to", async () => {
    await verifyIsClean(api);

    const expected = new Map(wallets.map((w) => [w, { posted: 0n, held: 0n }]));
    const amountOf = (o: Op) => cents(o.final!.body.amount);
    for (const o of [...finals("fund"), ...finals("credit")]) expected.get(o.walletId)!.posted += amountOf(o);
    for (const o of finals("payment")) expected.get(o.walletId)!.posted -= amountOf(o);
    for (const o of finals("withdrawal")) expected.get(o.walletId)!.held += amountOf(o);
    for (const o of finals("complete")) {
      expected.get(o.walletId)!.posted -= amountOf(o);
      expected.get(o.walletId)!.held -= amountOf(o);
    }
    for (const o of finals("transfer")) {
      const t = await api("GET", `/v1/transfers/${o.final!.body.id}`);
      if (t.body.status !== "settled") continue;
      expected.get(t.body.fromWalletId)!.posted -= amountOf(o);
      expected.get(t.body.toWalletId)!.posted += amountOf(o);
    }
    const actual = new Map<string, { posted: bigint; held: bigint }>();
    for (const w of wallets) {
      const view = await api("GET", `/v1/wallets/${w}`);
      actual.set(w, { posted: cents(view.body.balance.posted), held: cents(view.body.balance.held) });
    }
    expect(actual).toEqual(expected);

    const total = (m: Map<string, { posted: bigint }>) => [...m.values()].reduce((sum, b) => sum + b.posted, 0n);
    const credits = [...finals("fund"), ...finals("credit")].reduce((s, o) => s + amountOf(o), 0n);
    const debits = [...finals("payment"), ...finals("complete")].reduce((s, o) => s + amountOf(o), 0n);
    expect(total(actual)).toBe(credits - debits);
  }, TEST_TIMEOUT_MS);
});
