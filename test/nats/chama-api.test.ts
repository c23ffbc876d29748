import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { shardOf } from "../../actors/shards";
import { loadConfig } from "../../src/config";
import { people, tokenFor, user, type As } from "../support/auth";
import { verifyIsClean } from "../support/ledger";
import { deleteClusterState } from "../support/nats";
import { startTestNode, type TestNode } from "../support/node";

/**
 * Chamas over the NATS request-reply API (`<prefix>.v1.chamas.*`), on a node in cluster mode: every
 * chama command leaves the API handler on the chama shard subject `<prefix>.chama.<shard>.<chamaId>`
 * (actors/nats-router.ts), never on the wallets' `<prefix>.wallet.…`, and is answered by the shard's
 * owner. Plain subscriptions on both kinds of shard subject watch them go by. REST on the same node must see exactly what NATS answered.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PREFIX = `coffertest${crypto.randomUUID().slice(0, 8)}`;
const SHARDS = loadConfig({ NATS_URL, NATS_SUBJECT_PREFIX: PREFIX }).SHARDS;

let t: TestNode;
let nc: NatsConnection;
let sniffers: Subscription[] = [];
/** Every command seen on the shard subjects (wallet and chama): subject and the envelope's command type. */
const shardTraffic: { subject: string; type: string }[] = [];

beforeAll(async () => {
  t = await startTestNode("natschama", { NATS_URL, NATS_SUBJECT_PREFIX: PREFIX });
  nc = await connect({ servers: NATS_URL });
  // Not in the shard's queue group and never replying: it only sees what the owner is asked.
  const sniff = (_e: unknown, msg: Msg) => {
    let type = "?";
    try {
      // A signed node message: one header line, then the envelope (actors/bus/wire.ts).
      const text = msg.string();
      type = (JSON.parse(text.slice(text.indexOf("\n") + 1)) as { command?: { type?: string } }).command?.type ?? "?";
    } catch {
      // the codec may not be plain JSON for every field; the subject is what matters
    }
    shardTraffic.push({ subject: msg.subject, type });
  };
  sniffers = ["wallet", "chama"].map((kind) => nc.subscribe(`${PREFIX}.${kind}.>`, { callback: sniff }));
  await nc.flush();
});
afterAll(async () => {
  for (const sniffer of sniffers) sniffer.unsubscribe();
  await nc?.drain();
  await t?.stop();
  await deleteClusterState(PREFIX);
});

interface Reply {
  status: number;
  body: any;
}

const BANK = { type: "ke_bank", bankCode: "11", account: "0011112222333" } as const;

async function call(operation: string, payload: unknown, opts: { as?: As; key?: string | null; raw?: string } = {}): Promise<Reply> {
  const h = headers();
  h.set("Authorization", `Bearer ${await tokenFor(opts.as)}`);
  if (opts.key !== null) h.set("Idempotency-Key", opts.key ?? crypto.randomUUID());
  const reply = await nc.request(`${PREFIX}.v1.${operation}`, opts.raw ?? JSON.stringify(payload), { timeout: 5_000, headers: h });
  return JSON.parse(reply.string()) as Reply;
}

function ok(r: Reply, status = 200): any {
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A chama made over NATS: `admins[0]` creates it, the others join as admins, `members` as members. */
async function chamaOverNats(admins: string[], members: string[] = [], fund?: string): Promise<string> {
  const created = ok(await call("chamas.create", { name: `nats chama of ${admins[0]}`, asset: "USD" }, { as: user(admins[0]!) }), 201);
  expect(created).toMatchObject({ asset: "USD", status: "active", createdBy: admins[0], members: 1 });
  const chamaId = created.id as string;
  for (const a of admins.slice(1)) {
    expect(ok(await call("chamas.members.add", { chamaId, memberId: a, role: "admin" }, { as: user(admins[0]!) }), 201)).toMatchObject({ memberId: a, role: "admin", status: "member" });
  }
  for (const m of members) {
    expect(ok(await call("chamas.members.add", { chamaId, memberId: m }, { as: user(admins[0]!) }), 201)).toMatchObject({ memberId: m, role: "member", status: "member" });
  }
  if (fund) ok(await call("chamas.deposits.create", { chamaId, memberId: admins[0], amount: fund }), 201);
  return chamaId;
}

describe("a chama's whole life over NATS request-reply", () => {
  test("create, add members, deposit, request, approve, continue, complete; REST reads the same state", async () => {
    const p = people("amina", "baraka", "chebet", "dedan");
    const chamaId = await chamaOverNats([p.amina, p.baraka], [p.chebet]);
    ok(await call("chamas.members.add", { chamaId, memberId: p.dedan }, { as: user(p.amina) }), 201);

    const deposit = ok(await call("chamas.deposits.create", { chamaId, memberId: p.chebet, amount: "100.00", reference: "mpesa-1" }), 201);
    expect(deposit).toMatchObject({ chamaId, memberId: p.chebet, asset: "USD", amount: "100.00", contributed: "100.00", balance: { available: "100.00" } });

    // A plain member asks for 30.00 as themself; an admin other than the requester approves.
    const requested = ok(await call("chamas.withdrawals.create", { chamaId, amount: "30.00", destination: BANK }, { as: user(p.chebet) }), 201);
    expect(requested).toMatchObject({ chamaId, memberId: p.chebet, amount: "30.00", status: "pending_approval", approvals: [], rejections: [] });
    expect(JSON.stringify(requested)).not.toContain("1111 2222 3333");
    const withdrawalId = requested.id as string;
    expect(ok(await call("chamas.get", { chamaId }, { key: null })).balance).toEqual({ posted: "100.00", held: "30.00", available: "70.00" });

    const approved = ok(await call("chamas.withdrawals.approve", { chamaId, withdrawalId, note: "looks right" }, { as: user(p.baraka) }));
    expect(approved).toMatchObject({ id: withdrawalId, status: "approved", approvals: [p.baraka] });
    expect(ok(await call("chamas.withdrawals.continue", { chamaId, withdrawalId }, { as: user(p.chebet) })).status).toBe("processing");
    const completed = ok(await call("chamas.withdrawals.complete", { chamaId, withdrawalId }));
    expect(completed).toMatchObject({ id: withdrawalId, status: "completed", amount: "30.00" });

    const overNats = ok(await call("chamas.get", { chamaId }, { key: null, as: user(p.dedan) }));
    expect(overNats).toMatchObject({ id: chamaId, status: "active", balance: { posted: "70.00", held: "0.00", available: "70.00" }, members: 4 });
    const rest = await t.api("GET", `/v1/chamas/${chamaId}`, undefined, { as: user(p.dedan) });
    expect({ status: rest.status, body: rest.body }).toEqual({ status: 200, body: overNats });

    const wOverNats = ok(await call("chamas.withdrawals.get", { chamaId, withdrawalId }, { key: null, as: user(p.chebet) }));
    expect(wOverNats).toMatchObject({ status: "completed", approvals: [p.baraka] });
    const reviews = ok(await call("chamas.withdrawals.reviews.list", { chamaId, withdrawalId }, { key: null, as: user(p.chebet) }));
    expect(reviews.items).toEqual([expect.objectContaining({ reviewerId: p.baraka, decision: "approve", note: "looks right" })]);
    const wRest = await t.api("GET", `/v1/chamas/${chamaId}/withdrawals/${withdrawalId}`, undefined, { as: user(p.chebet) });
    expect({ status: wRest.status, body: wRest.body }).toEqual({ status: 200, body: wOverNats });

    const membersOverNats = ok(await call("chamas.members.list", { chamaId }, { key: null, as: user(p.amina) }));
    const membersRest = await t.api("GET", `/v1/chamas/${chamaId}/members`, undefined, { as: user(p.amina) });
    expect(membersRest.body).toEqual(membersOverNats);
    expect(membersOverNats.items.find((m: any) => m.memberId === p.chebet)).toMatchObject({ contributed: "100.00", withdrawn: "30.00", share: "1.0000" });

    // Exactly one payout journal, and the books still balance.
    const [row] = await t.node.db`select count(*)::int as n from journals where kind = 'chama_withdrawal' and wallet_id = ${chamaId}`;
    expect(row!.n).toBe(1);
    await verifyIsClean(t);
  });

  test("the chama's commands ran on the shard's owner, never as a wallet's", async () => {
    const p = people("owner");
    const before = shardTraffic.length;
    const chamaId = await chamaOverNats([p.owner], [], "5.00");
    await nc.flush(); // every message published before this point has reached the sniffer
    // This node holds every shard, so its commands run here without crossing NATS at all (commands
    // forwarded to another node travel on `<prefix>.chama.<shard>.<id>`, alone or in a batch:
    // test/cluster/forwarding.test.ts); nothing went out on a wallet subject either.
    const seen = shardTraffic.slice(before).filter((m) => m.subject.endsWith(`.${chamaId}`));
    expect(seen).toEqual([]);
    // ... and the owner (this node, the only one) holds the shard and the chama's actor.
    const cluster = await t.api("GET", "/admin/cluster");
    expect(cluster.status).toBe(200);
    expect(cluster.body.nodes[0].shards).toContain(shardOf(chamaId, SHARDS));
    expect(t.node.host.inspect(chamaId)).toMatchObject({ loaded: true, state: "active" });
  });
});

describe("idempotency over NATS", () => {
  test("the same key 5 times at once: one withdrawal, five identical replies; REST with that key replays it too", async () => {
    const p = people("a1", "a2", "m1");
    const chamaId = await chamaOverNats([p.a1, p.a2], [p.m1], "50.00");
    const key = crypto.randomUUID();
    const payload = { chamaId, amount: "20.00", destination: BANK };
    const replies = await Promise.all(Array.from({ length: 5 }, () => call("chamas.withdrawals.create", payload, { key, as: user(p.m1) })));
    expect(replies[0]!.status).toBe(201);
    for (const r of replies) expect(r).toEqual(replies[0]!);
    const rest = await t.api("POST", `/v1/chamas/${chamaId}/withdrawals`, { amount: "20.00", destination: BANK }, { key, as: user(p.m1) });
    expect({ status: rest.status, body: rest.body }).toEqual(replies[0]!);
    expect(ok(await call("chamas.get", { chamaId }, { key: null })).balance).toEqual({ posted: "50.00", held: "20.00", available: "30.00" });
    const list = ok(await call("chamas.withdrawals.list", { chamaId }, { key: null }));
    expect(list.items.map((w: any) => w.id)).toEqual([replies[0]!.body.id]);
  });

  test("replaying an approval, a continue and a completion gives the stored answer and changes nothing", async () => {
    const p = people("a1", "a2", "m1");
    const chamaId = await chamaOverNats([p.a1, p.a2], [p.m1], "50.00");
    const w = ok(await call("chamas.withdrawals.create", { chamaId, amount: "10.00", destination: BANK }, { as: user(p.m1) }), 201);
    const steps: [string, As | undefined][] = [
      ["chamas.withdrawals.approve", user(p.a1)],
      ["chamas.withdrawals.continue", user(p.m1)],
      ["chamas.withdrawals.complete", undefined],
    ];
    for (const [op, as] of steps) {
      const key = crypto.randomUUID();
      const first = await call(op, { chamaId, withdrawalId: w.id }, { key, as });
      expect(first.status).toBe(200);
      expect(await call(op, { chamaId, withdrawalId: w.id }, { key, as })).toEqual(first);
    }
    // A new key for a step already taken is a business answer, not a second effect.
    const again = await call("chamas.withdrawals.complete", { chamaId, withdrawalId: w.id });
    expect({ status: again.status, code: again.body.code }).toEqual({ status: 409, code: "INVALID_TRANSITION" });
    expect(ok(await call("chamas.get", { chamaId }, { key: null })).balance).toEqual({ posted: "40.00", held: "0.00", available: "40.00" });
    const [row] = await t.node.db`select count(*)::int as n from journals where kind = 'chama_withdrawal' and wallet_id = ${chamaId}`;
    expect(row!.n).toBe(1);
  });

  test("the same key with another payload is a 422 IDEMPOTENCY_CONFLICT, and nothing changes", async () => {
    const p = people("a1", "a2", "m1");
    const chamaId = await chamaOverNats([p.a1, p.a2], [p.m1], "50.00");
    const key = crypto.randomUUID();
    ok(await call("chamas.withdrawals.create", { chamaId, amount: "5.00", destination: BANK }, { key, as: user(p.m1) }), 201);
    const other = await call("chamas.withdrawals.create", { chamaId, amount: "6.00", destination: BANK }, { key, as: user(p.m1) });
    expect({ status: other.status, code: other.body.code }).toEqual({ status: 422, code: "IDEMPOTENCY_CONFLICT" });
    const depKey = crypto.randomUUID();
    ok(await call("chamas.deposits.create", { chamaId, memberId: p.m1, amount: "1.00" }, { key: depKey }), 201);
    const otherDeposit = await call("chamas.deposits.create", { chamaId, memberId: p.a2, amount: "1.00" }, { key: depKey });
    expect({ status: otherDeposit.status, code: otherDeposit.body.code }).toEqual({ status: 422, code: "IDEMPOTENCY_CONFLICT" });
    expect(ok(await call("chamas.get", { chamaId }, { key: null })).balance).toEqual({ posted: "51.00", held: "5.00", available: "46.00" });
  });

  test.each([
    ["chamas.create", () => ({ name: "no key", asset: "USD" })],
    ["chamas.deposits.create", (chamaId: string, m: string) => ({ chamaId, memberId: m, amount: "1.00" })],
    ["chamas.withdrawals.create", (chamaId: string) => ({ chamaId, amount: "1.00", destination: BANK })],
  ] as const)("%s without an Idempotency-Key is a 400 and changes nothing", async (op, payload) => {
    const p = people("a1", "a2");
    const chamaId = await chamaOverNats([p.a1, p.a2], [], "10.00");
    const before = ok(await call("chamas.get", { chamaId }, { key: null }));
    const as = op === "chamas.deposits.create" ? undefined : user(p.a1);
    const r = await call(op, (payload as (c: string, m: string) => unknown)(chamaId, p.a1), { key: null, as });
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 400, code: "IDEMPOTENCY_KEY_REQUIRED" });
    expect(ok(await call("chamas.get", { chamaId }, { key: null }))).toEqual(before);
  });
});

describe("bad input and strangers over NATS", () => {
  test.each([
    ["chamas.create", { name: "x", asset: "USD", extra: true }],
    ["chamas.withdrawals.create", { amount: "1.00", destination: BANK, memberId: "someone-else" }],
    ["chamas.withdrawals.approve", { approver: "me" }],
    ["chamas.withdrawals.continue", { note: "continue takes nothing" }],
    ["chamas.get", { verbose: 1 }],
  ] as const)("%s with an unknown field is a 400 VALIDATION_FAILED", async (op, extra) => {
    const p = people("a1", "a2", "m1");
    const chamaId = await chamaOverNats([p.a1, p.a2], [p.m1], "10.00");
    const w = ok(await call("chamas.withdrawals.create", { chamaId, amount: "1.00", destination: BANK }, { as: user(p.m1) }), 201);
    const before = ok(await call("chamas.withdrawals.get", { chamaId, withdrawalId: w.id }, { key: null }));
    const payload = op === "chamas.create" ? extra : { chamaId, ...(op.includes("withdrawals.create") ? {} : { withdrawalId: w.id }), ...extra };
    const as = op === "chamas.withdrawals.approve" ? user(p.a1) : user(p.m1);
    const r = await call(op, op === "chamas.get" ? { chamaId, ...extra } : payload, op === "chamas.get" ? { key: null, as } : { as });
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 400, code: "VALIDATION_FAILED" });
    expect(ok(await call("chamas.withdrawals.get", { chamaId, withdrawalId: w.id }, { key: null }))).toEqual(before);
  });

  test("a stranger gets 404 CHAMA_NOT_FOUND for everything on the chama, and changes nothing", async () => {
    const p = people("a1", "a2", "m1", "stranger");
    const chamaId = await chamaOverNats([p.a1, p.a2], [p.m1], "10.00");
    const w = ok(await call("chamas.withdrawals.create", { chamaId, amount: "2.00", destination: BANK }, { as: user(p.m1) }), 201);
    const before = {
      chama: ok(await call("chamas.get", { chamaId }, { key: null })),
      withdrawal: ok(await call("chamas.withdrawals.get", { chamaId, withdrawalId: w.id }, { key: null })),
    };
    const as = user(p.stranger);
    const attempts: [string, Record<string, unknown>, boolean][] = [
      ["chamas.get", { chamaId }, false],
      ["chamas.members.list", { chamaId }, false],
      ["chamas.withdrawals.list", { chamaId }, false],
      ["chamas.withdrawals.get", { chamaId, withdrawalId: w.id }, false],
      ["chamas.withdrawals.create", { chamaId, amount: "1.00", destination: BANK }, true],
      ["chamas.withdrawals.approve", { chamaId, withdrawalId: w.id }, true],
      ["chamas.withdrawals.continue", { chamaId, withdrawalId: w.id }, true],
      ["chamas.withdrawals.cancel", { chamaId, withdrawalId: w.id }, true],
      ["chamas.members.add", { chamaId, memberId: p.stranger }, true],
      ["chamas.invitations.accept", { chamaId }, true],
      ["chamas.freeze", { chamaId }, true],
    ];
    const answers = await Promise.all(attempts.map(([op, payload, mutates]) => call(op, payload, { as, ...(mutates ? {} : { key: null }) })));
    expect(answers.map((r, i) => `${attempts[i]![0]}: ${r.status} ${r.body.code}`)).toEqual(attempts.map(([op]) => `${op}: 404 CHAMA_NOT_FOUND`));
    expect({
      chama: ok(await call("chamas.get", { chamaId }, { key: null })),
      withdrawal: ok(await call("chamas.withdrawals.get", { chamaId, withdrawalId: w.id }, { key: null })),
    }).toEqual(before);
  });
});
