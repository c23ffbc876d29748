import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ADMIN, user, type As } from "../support/auth";
import { bounded } from "../support/bounded";
import { isOk as ok, lastAnswer as last, terminateBackends as terminate, timedRequest, unexpectedFailures, verifyIsCleanAfterChaos, type Answer } from "../support/chaos";
import { testServerUrl } from "../support/db";
import { cents, usd } from "../support/money";
import { startTestNode, type TestNode } from "../support/node";
import { seeded } from "../support/random";
import { untilDefinite } from "../support/retry";

/**
 * The database drops the node's connections while chamas are busy: members request withdrawals,
 * admins approve or reject, requesters continue or cancel, the processor completes or fails, the
 * platform deposits; 16 callers at once over 4 chamas. Every backend serving the test database is
 * terminated several times meanwhile. A caller may be told 503 (retry with the same key), never
 * 500, and never left without an answer; once every caller has retried to a definite answer, each
 * withdrawal has ended exactly once, nothing is paid twice, and the books agree.
 */
const CHAMAS = 4;
const FUNDING_MINOR = 20_000n; // 200.00 USD per chama to start with
const CHAINS = 160;
const IN_FLIGHT = 16;
/** A termination after every this many requests issued, while the load runs. */
const TERMINATE_EVERY = 80;
const RETRY = { attempts: 40, pauseMs: 25 };
/** A healthy node answers in milliseconds; past this a request counts as unanswered. */
const REQUEST_TIMEOUT_MS = 3_000;
const LOAD_DEADLINE_MS = 25_000;

type Plan = "complete" | "fail" | "reject" | "cancel" | "deposit";
/** The status each plan ends a withdrawal in (when its request was accepted). */
const ENDS: Record<Exclude<Plan, "deposit">, string> = { complete: "completed", fail: "failed", reject: "rejected", cancel: "cancelled" };

interface Step {
  name: string;
  path: string;
  body: unknown;
  as: As;
  key: string;
  answers: Answer[];
}
interface Chain {
  plan: Plan;
  chama: ChamaInfo;
  amount: string;
  requester: string;
  steps: Step[];
  withdrawalId?: string;
}
interface ChamaInfo {
  id: string;
  admins: string[];
  members: string[];
}

let t: TestNode;
let admin: postgres.Sql;
/** Opened after the chaos, for reading the ledger: none of its connections was ever terminated. */
let sql: postgres.Sql;
const chamas: ChamaInfo[] = [];
const chains: Chain[] = [];
const terminations: number[] = [];
let issued = 0;

const retryable = (a: Answer) => a.status === 0 || (a.status === 503 && ["UNAVAILABLE", "OVERLOADED"].includes(a.body?.code));
const steps = () => chains.flatMap((c) => c.steps);
const show = (a: Answer) => (ok(a) ? `${a.status} ${a.body?.status ?? ""}`.trim() : `${a.status} ${a.body?.code}`);

/** The node stays up throughout: a failed connection (other than our own deadline) fails the test. */
const request = (method: "GET" | "POST", path: string, body?: unknown, key?: string, as: As = ADMIN): Promise<Answer> =>
  timedRequest(t.baseUrl, method, path, { body, key, as, timeoutMs: REQUEST_TIMEOUT_MS, connectionFailure: "error" });

/** A GET that may meet a connection the chaos killed: 503 means ask again (bounded). */
async function read(path: string): Promise<any> {
  const answer = await untilDefinite(() => request("GET", path), (a) => !retryable(a), RETRY);
  if (answer.status !== 200) throw new Error(`GET ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function terminateBackends(): Promise<void> {
  terminations.push(await terminate(admin, t.db.url));
}

const chaos: Promise<void>[] = [];

/** One step of a chain: sent, and sent again with the same key while the answer says "retry". */
async function perform(chain: Chain, name: string, path: string, body: unknown, as: As): Promise<Answer> {
  const step: Step = { name, path, body, as, key: `chamadb-${name}-${crypto.randomUUID()}`, answers: [] };
  chain.steps.push(step);
  return untilDefinite(
    () => {
      if (++issued % TERMINATE_EVERY === 0) chaos.push(terminateBackends());
      return request("POST", path, body, step.key, as);
    },
    (a) => !retryable(a),
    RETRY,
    step.answers,
  );
}

/** A withdrawal's whole life as its plan says, each step waiting for the one before. */
async function runChain(chain: Chain): Promise<void> {
  const c = chain.chama;
  const path = `/v1/chamas/${c.id}`;
  if (chain.plan === "deposit") {
    await perform(chain, "deposit", `${path}/deposits`, { memberId: chain.requester, amount: chain.amount }, ADMIN);
    return;
  }
  const requested = await perform(chain, "request", `${path}/withdrawals`, { amount: chain.amount, destination: { type: "ke_bank", bankCode: "01", account: "7744445555666" } }, user(chain.requester));
  if (requested.status !== 201) return;
  chain.withdrawalId = requested.body.id;
  const wpath = `${path}/withdrawals/${chain.withdrawalId}`;
  const reviewer = c.admins.find((a) => a !== chain.requester)!;
  if (chain.plan === "cancel") {
    await perform(chain, "cancel", `${wpath}/cancel`, { reason: "not needed" }, user(chain.requester));
    return;
  }
  if (chain.plan === "reject") {
    await perform(chain, "reject", `${wpath}/reject`, { note: "no" }, user(reviewer));
    return;
  }
  if ((await perform(chain, "approve", `${wpath}/approve`, {}, user(reviewer))).status !== 200) return;
  if ((await perform(chain, "continue", `${wpath}/continue`, {}, user(chain.requester))).status !== 200) return;
  if (chain.plan === "complete") await perform(chain, "complete", `${wpath}/complete`, {}, ADMIN);
  else await perform(chain, "fail", `${wpath}/fail`, { reason: "bank refused" }, ADMIN);
}

async function setUpChama(i: number): Promise<ChamaInfo> {
  const run = crypto.randomUUID().slice(0, 6);
  const admins = [1, 2, 3].map((n) => `dbc${i}-admin${n}-${run}`);
  const members = [1, 2, 3].map((n) => `dbc${i}-member${n}-${run}`);
  const created = await t.api("POST", "/v1/chamas", { name: `db failure ${i}`, asset: "USD" }, { as: user(admins[0]!) });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  for (const who of [...admins.slice(1), ...members]) {
    const added = await t.api("POST", `/v1/chamas/${id}/members`, { memberId: who, role: admins.includes(who) ? "admin" : "member" }, { as: user(admins[0]!) });
    if (added.status !== 201) throw new Error(`add: ${added.status} ${JSON.stringify(added.body)}`);
  }
  const funded = await t.api("POST", `/v1/chamas/${id}/deposits`, { memberId: members[0], amount: usd(FUNDING_MINOR) });
  if (funded.status !== 201) throw new Error(`fund: ${funded.status} ${JSON.stringify(funded.body)}`);
  return { id, admins, members };
}

beforeAll(async () => {
  t = await startTestNode("chamadbfail");
  admin = postgres(await testServerUrl(), { max: 1, onnotice: () => {} });
  for (let i = 0; i < CHAMAS; i++) chamas.push(await setUpChama(i));

  const random = seeded(11);
  const plans: Plan[] = ["complete", "complete", "complete", "complete", "fail", "reject", "cancel", "deposit"];
  await bounded(IN_FLIGHT, () => {
    if (chains.length >= CHAINS) return undefined;
    const chama = chamas[Math.floor(random() * CHAMAS)]!;
    const plan = plans[Math.floor(random() * plans.length)]!;
    const people = [...chama.members, ...chama.admins];
    const chain: Chain = {
      plan,
      chama,
      amount: usd(BigInt(100 + Math.floor(random() * 1_900))), // 1.00 to 19.99
      requester: people[Math.floor(random() * people.length)]!,
      steps: [],
    };
    chains.push(chain);
    return runChain(chain);
  }, LOAD_DEADLINE_MS);
  await Promise.all(chaos);
  sql = postgres(t.db.url, { max: 2, onnotice: () => {} });
}, 45_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await admin?.end({ timeout: 1 });
  // After lost connections the pool's end() can wait out its whole timeout (see db-failure.test.ts).
  await t?.stop();
}, 30_000);

describe("Postgres connections terminated while chamas are busy", () => {
  test("the terminations hit the node's connections while the whole load was issued", () => {
    expect(chains.length).toBe(CHAINS);
    expect(terminations.length).toBeGreaterThanOrEqual(3);
    expect(terminations.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);
    const firstUnavailable = steps().filter((s) => s.answers[0]!.status === 503).length;
    console.info(`chama db failure: ${issued} requests issued, terminated ${JSON.stringify(terminations)} backends; ${firstUnavailable} of ${steps().length} steps were first told 503`);
  });

  test("no request ever answers 500: failures are 503 UNAVAILABLE (retryable) or a business refusal", () => {
    const bad = steps().flatMap((s) => unexpectedFailures(s.answers).map((a) => `${s.name}: ${a.status} ${JSON.stringify(a.body)}`));
    expect(bad).toEqual([]);
  });

  test(`the node keeps answering: no request waits ${REQUEST_TIMEOUT_MS} ms for its answer`, () => {
    const slow = steps().filter((s) => s.answers.some((a) => a.status === 0));
    expect(slow.map((s) => `${s.name} ${s.key}: ${s.answers.map((a) => `${a.status}/${Math.round(a.ms)}ms`).join(", ")}`)).toEqual([]);
  });

  test("every step got a definite answer by retrying with its key, and every chain ran to its planned end", () => {
    expect(steps().filter((s) => retryable(last(s))).map((s) => `${s.name}: ${s.answers.map(show).join(", ")}`)).toEqual([]);
    // A chain stops early only when its request was refused for want of money.
    const cut = chains.filter((c) => {
      const names = c.steps.map((s) => s.name);
      if (c.plan === "deposit") return names.join() !== "deposit" || last(c.steps[0]!).status !== 201;
      if (last(c.steps[0]!).status !== 201) return show(last(c.steps[0]!)) !== "409 INSUFFICIENT_FUNDS";
      const expected = { complete: "request,approve,continue,complete", fail: "request,approve,continue,fail", reject: "request,reject", cancel: "request,cancel" }[c.plan];
      return names.join() !== expected || c.steps.some((s) => !ok(last(s)));
    });
    expect(cut.map((c) => `${c.plan}: ${c.steps.map((s) => `${s.name} ${show(last(s))}`).join(" -> ")}`)).toEqual([]);
  });

  test("each accepted withdrawal ended exactly once, in the status its last step reported", async () => {
    const accepted = chains.filter((c) => c.withdrawalId);
    const rows = await sql`select id::text, chama_id::text, status, amount::text from chama_withdrawals where chama_id in ${sql(chamas.map((c) => c.id))}`;
    expect(rows.map((r) => r.id).sort()).toEqual(accepted.map((c) => c.withdrawalId!).sort());
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    expect(accepted.filter((c) => byId.get(c.withdrawalId!)!.status !== ENDS[c.plan as keyof typeof ENDS]).map((c) => `${c.plan} ${byId.get(c.withdrawalId!)!.status}`)).toEqual([]);
    expect(accepted.filter((c) => last(c.steps[c.steps.length - 1]!).body.status !== ENDS[c.plan as keyof typeof ENDS]).map((c) => c.plan)).toEqual([]);

    const ends = await sql`select payload->>'withdrawalId' as wid, array_agg(payload->>'status' order by created_at) as statuses from events
      where type = 'chama.withdrawal.changed' and payload->>'status' in ('completed', 'failed', 'rejected', 'expired', 'cancelled') group by 1`;
    const endsById = new Map(ends.map((e) => [e.wid as string, e.statuses as string[]]));
    const wrong = accepted.filter((c) => JSON.stringify(endsById.get(c.withdrawalId!)) !== JSON.stringify([ENDS[c.plan as keyof typeof ENDS]]));
    expect(wrong.map((c) => ({ plan: c.plan, ends: endsById.get(c.withdrawalId!) }))).toEqual([]);
    expect(ends.length).toBe(accepted.length);
  });

  test("no withdrawal is paid twice: one chama_withdrawal journal per completed withdrawal, of its amount", async () => {
    const journals = await sql`select o.payload->>'withdrawalId' as wid, j.id::text as journal,
        (select sum(amount) from postings where journal_id = j.id and amount > 0)::text as amount
      from journals j left join events o on o.type = 'chama.withdrawal.changed' and o.payload->>'journalId' = j.id::text
      where j.kind = 'chama_withdrawal'`;
    const completed = chains.filter((c) => c.withdrawalId && c.plan === "complete");
    expect(journals.map((j) => j.wid).sort()).toEqual(completed.map((c) => c.withdrawalId).sort());
    const amountOf = new Map(completed.map((c) => [c.withdrawalId!, c.amount]));
    expect(journals.filter((j) => usd(BigInt(j.amount)) !== amountOf.get(j.wid)).map((j) => j.wid)).toEqual([]);
  });

  test("every chama's posted is its deposits minus its payouts, nothing stays held, and the API says the same", async () => {
    for (const c of chamas) {
      const mine = chains.filter((ch) => ch.chama === c);
      const deposits = mine.filter((ch) => ch.plan === "deposit" && last(ch.steps[0]!).status === 201).reduce((s, ch) => s + cents(ch.amount), 0n);
      const paid = mine.filter((ch) => ch.withdrawalId && ch.plan === "complete").reduce((s, ch) => s + cents(ch.amount), 0n);
      const posted = FUNDING_MINOR + deposits - paid;
      const [row] = await sql`select posted::text, held::text from chamas where id = ${c.id}`;
      expect({ chama: c.id, posted: BigInt(row!.posted), held: BigInt(row!.held) }).toEqual({ chama: c.id, posted, held: 0n });
      expect((await read(`/v1/chamas/${c.id}`)).balance).toEqual({ posted: usd(posted), held: "0.00", available: usd(posted) });
      const [members] = await sql`select coalesce(sum(withdrawn), 0)::text as withdrawn, coalesce(sum(contributed), 0)::text as contributed from chama_members where chama_id = ${c.id}`;
      expect({ withdrawn: BigInt(members!.withdrawn), contributed: BigInt(members!.contributed) }).toEqual({ withdrawn: paid, contributed: FUNDING_MINOR + deposits });
    }
  });

  test("every key replays its final answer, and the verifier is clean", async () => {
    const all = steps();
    const replays: Answer[] = [];
    let next = 0;
    await bounded(IN_FLIGHT, () => {
      const i = next++;
      if (i >= all.length) return undefined;
      const s = all[i]!;
      return untilDefinite(() => request("POST", s.path, s.body, s.key, s.as), (a) => !retryable(a), { attempts: 5, pauseMs: 10 }).then((a) => void (replays[i] = a));
    }, 15_000);
    const differs = all.flatMap((s, i) =>
      replays[i]?.status === last(s).status && Bun.deepEquals(replays[i]?.body, last(s).body) ? [] : [{ step: s.name, first: last(s), replay: replays[i] }],
    );
    expect(differs).toEqual([]);
    await verifyIsCleanAfterChaos(() => request("GET", "/admin/verify"));
    // Hundreds of replays, some of which first meet a pooled connection killed while idle (503, retried).
  }, 30_000);
});
