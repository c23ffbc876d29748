import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { user } from "../support/auth";
import { forEachBounded } from "../support/bounded";
import { createTestDatabase, type TestDatabase } from "../support/db";
import { verifyIsClean } from "../support/ledger";
import { cents, usd } from "../support/money";
import { apiFor, type Api } from "../support/node";
import { startService, type ServiceProcess } from "../support/process";

/**
 * Transfers between members' wallets and their chama, with the real service as a subprocess that is
 * SIGKILLed while contributions (wallet → chama) and withdrawals paid into wallets (chama → wallet)
 * are in flight, then started again on the same database. The saga's steps are driven by outbox
 * rows committed with the step before, so the restarted service finishes every one: each
 * acknowledged contribution is in the chama exactly once, each continued withdrawal completes once,
 * and the books balance. Requests the kill left without an answer are sent again with their key.
 */
const MEMBERS = 6;
const WALLET_FUNDING = "1000.00";
const CHAMA_FUNDING = "2000.00";
const PAYOUTS = 40; // approved withdrawals into wallets, waiting to be continued
const IN_FLIGHT = 12;
const KILL_AFTER_ACKS = 60;
const MAX_REQUESTS = 2_000;
const SETTLE_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 30_000;

type Kind = "contribution" | "continue";
interface Answer {
  status: number;
  body: any;
}
interface Op {
  kind: Kind;
  key: string;
  path: string;
  body: unknown;
  member: string;
  fate: "acked" | "refused" | "unknown";
  first?: Answer;
  final?: Answer;
}

const RUN = crypto.randomUUID().slice(0, 8);
const ADMIN = `admin-${RUN}`;
let db: TestDatabase;
let sql: postgres.Sql;
const services: ServiceProcess[] = [];
let api: Api;
let chamaId = "";
const members: { id: string; wallet: string }[] = [];
const payouts: { id: string; member: string; wallet: string; amount: string }[] = [];
const ops: Op[] = [];
let pendingAtKill = 0;

const ok = (a?: Answer) => a !== undefined && a.status >= 200 && a.status < 300;
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

async function send(target: Api, op: Op): Promise<Answer> {
  const res = await target("POST", op.path, op.body, { key: op.key, as: user(op.member) });
  return { status: res.status, body: res.body };
}

async function expectOk(res: Promise<{ status: number; body: any }>, status = 200): Promise<any> {
  const r = await res;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Fire contributions and continues; SIGKILL the service from inside the ack that reaches KILL_AFTER_ACKS. */
async function loadUntilKilled(service: ServiceProcess): Promise<void> {
  const waiting = [...payouts];
  let acks = 0;
  let killed = false;
  const nextOp = (): Op => {
    if (waiting.length && Math.random() < 0.4) {
      const w = waiting.splice(Math.floor(Math.random() * waiting.length), 1)[0]!;
      return { kind: "continue", key: `continue-${crypto.randomUUID()}`, path: `/v1/chamas/${chamaId}/withdrawals/${w.id}/continue`, body: {}, member: w.member, fate: "unknown" };
    }
    const m = pick(members);
    const amount = usd(BigInt(1 + Math.floor(Math.random() * 500)));
    return { kind: "contribution", key: `contribution-${crypto.randomUUID()}`, path: `/v1/chamas/${chamaId}/contributions`, body: { fromWalletId: m.wallet, amount }, member: m.id, fate: "unknown" };
  };
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (!killed && ops.length < MAX_REQUESTS) {
        const op = nextOp();
        ops.push(op);
        try {
          op.first = await send(api, op);
          op.fate = ok(op.first) ? "acked" : op.first.status >= 500 ? "unknown" : "refused";
          if (op.fate !== "unknown") op.final = op.first;
          if (op.fate === "acked" && ++acks === KILL_AFTER_ACKS) {
            killed = true;
            service.proc.kill("SIGKILL");
          }
        } catch {
          op.fate = "unknown";
        }
      }
    }),
  );
  await service.kill();
}

/** Poll (bounded) until the saga has no step left. */
async function sagaIdle(): Promise<number> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const [row] = await sql`select count(*)::int as n from outbox where saga_pending`;
    if (row!.n === 0 || Date.now() > deadline) return row!.n;
    await Bun.sleep(100);
  }
}

const finals = (kind: Kind) => ops.filter((o) => o.kind === kind && ok(o.final));

beforeAll(async () => {
  db = await createTestDatabase("chamawalletkill");
  sql = postgres(db.url, { max: 3, onnotice: () => {} });
  const first = await startService(db.url);
  services.push(first);
  api = apiFor(first.baseUrl);

  chamaId = (await expectOk(api("POST", "/v1/chamas", { name: "kill circle", asset: "USD" }, { as: user(ADMIN) }), 201)).id;
  await expectOk(api("POST", `/v1/chamas/${chamaId}/deposits`, { memberId: ADMIN, amount: CHAMA_FUNDING }), 201);
  for (let i = 0; i < MEMBERS; i++) {
    const id = `member-${i}-${RUN}`;
    await expectOk(api("POST", `/v1/chamas/${chamaId}/members`, { memberId: id }, { as: user(ADMIN) }), 201);
    const wallet = (await expectOk(api("POST", "/v1/wallets", { ownerId: id, asset: "USD" }), 201)).id;
    await expectOk(api("POST", `/v1/wallets/${wallet}/credits`, { amount: WALLET_FUNDING }), 201);
    members.push({ id, wallet });
  }
  for (let i = 0; i < PAYOUTS; i++) {
    const m = members[i % MEMBERS]!;
    const amount = usd(BigInt(1 + Math.floor(Math.random() * 2_000)));
    const w = await expectOk(api("POST", `/v1/chamas/${chamaId}/withdrawals`, { amount, destination: { type: "wallet", walletId: m.wallet } }, { as: user(m.id) }), 201);
    await expectOk(api("POST", `/v1/chamas/${chamaId}/withdrawals/${w.id}/approve`, {}, { as: user(ADMIN) }));
    payouts.push({ id: w.id, member: m.id, wallet: m.wallet, amount });
  }

  await loadUntilKilled(first);
  pendingAtKill = (await sql`select count(*)::int as n from outbox where saga_pending`)[0]!.n;
  const next = await startService(db.url);
  services.push(next);
  api = apiFor(next.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.kill()));
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

describe("contributions and payouts into wallets, the service SIGKILLed mid-saga and restarted", () => {
  test("the kill landed after dozens of acknowledgements, with saga steps still to take", () => {
    expect(ops.filter((o) => o.fate === "acked").length).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
    expect(finals("contribution").length).toBeGreaterThan(0);
    expect(finals("continue").length).toBeGreaterThan(0);
    expect(pendingAtKill).toBeGreaterThan(0);
  }, TEST_TIMEOUT_MS);

  test("re-sent with their keys, the requests the kill left unanswered get one answer each; the restarted saga finishes everything", async () => {
    const unknown = ops.filter((o) => o.fate === "unknown");
    await forEachBounded(unknown, IN_FLIGHT, async (op) => {
      op.final = await send(api, op);
    });
    expect(unknown.filter((o) => o.final!.status >= 500).map((o) => o.final)).toEqual([]);
    expect(await Promise.all(unknown.map((op) => send(api, op)))).toEqual(unknown.map((o) => o.final!));
    // A continue whose first answer was lost may find its withdrawal already continued: that is one continue.
    for (const o of unknown.filter((x) => !ok(x.final))) expect({ kind: o.kind, status: o.final!.status, code: o.final!.body.code }).toEqual({ kind: "continue", status: 409, code: "INVALID_TRANSITION" });
    expect(await sagaIdle()).toBe(0);
  }, TEST_TIMEOUT_MS);

  test("every acknowledged contribution arrived exactly once, credited to its member; nothing else did", async () => {
    const ids = finals("contribution").map((o) => o.final!.body.id as string).sort();
    const rows = await sql`select id, status from transfers where to_chama_id = ${chamaId} order by id`;
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows.filter((r) => r.status !== "settled").map((r) => ({ ...r }))).toEqual([]);
    expect((await sql`select count(*)::int as n from journals where kind = 'chama_contribution' and wallet_id = ${chamaId}`)[0]!.n).toBe(ids.length);
    for (const m of members) {
      const paid = finals("contribution").filter((o) => o.member === m.id).reduce((s, o) => s + cents(o.final!.body.amount), 0n);
      const view = await expectOk(api("GET", `/v1/chamas/${chamaId}/members/${m.id}`));
      expect({ member: m.id, contributed: view.contributed }).toEqual({ member: m.id, contributed: usd(paid) });
    }
  }, TEST_TIMEOUT_MS);

  test("every continued withdrawal completed once into its wallet; the others still wait, held", async () => {
    const continued = new Set(ops.filter((o) => o.kind === "continue" && o.final).map((o) => o.path.split("/").at(-2)!));
    const rows = await sql`select id, status from chama_withdrawals where chama_id = ${chamaId}`;
    const status = new Map(rows.map((r) => [r.id as string, r.status as string]));
    for (const p of payouts) expect({ id: p.id, status: status.get(p.id) }).toEqual({ id: p.id, status: continued.has(p.id) ? "completed" : "approved" });
    expect((await sql`select count(*)::int as n from journals where kind = 'chama_withdrawal' and wallet_id = ${chamaId}`)[0]!.n).toBe(continued.size);
    expect((await sql`select count(*)::int as n from journals where kind = 'transfer_credit'`)[0]!.n).toBe(continued.size);
  }, TEST_TIMEOUT_MS);

  test("every balance is what the answered requests add up to, and the verifier is clean", async () => {
    await verifyIsClean(api);
    const continued = new Set(ops.filter((o) => o.kind === "continue" && o.final).map((o) => o.path.split("/").at(-2)!));
    const contributed = finals("contribution").reduce((s, o) => s + cents(o.final!.body.amount), 0n);
    const paidOut = payouts.filter((p) => continued.has(p.id)).reduce((s, p) => s + cents(p.amount), 0n);
    const waiting = payouts.filter((p) => !continued.has(p.id)).reduce((s, p) => s + cents(p.amount), 0n);
    const chama = (await expectOk(api("GET", `/v1/chamas/${chamaId}`))).balance;
    expect({ posted: cents(chama.posted), held: cents(chama.held) }).toEqual({ posted: cents(CHAMA_FUNDING) + contributed - paidOut, held: waiting });
    for (const m of members) {
      const out = finals("contribution").filter((o) => o.member === m.id).reduce((s, o) => s + cents(o.final!.body.amount), 0n);
      const into = payouts.filter((p) => p.member === m.id && continued.has(p.id)).reduce((s, p) => s + cents(p.amount), 0n);
      const view = (await expectOk(api("GET", `/v1/wallets/${m.wallet}`))).balance;
      expect({ member: m.id, posted: cents(view.posted) }).toEqual({ member: m.id, posted: cents(WALLET_FUNDING) - out + into });
    }
  }, TEST_TIMEOUT_MS);
});
