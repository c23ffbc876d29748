import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { BUS_COMMAND_TYPES, parseEnvelope } from "../../actors/bus/envelope-schema";
import { BusGuard } from "../../actors/bus/guard";
import { BusKeys } from "../../actors/bus/keys";
import { openReply, sealRequest } from "../../actors/bus/wire";
import { decode, encode } from "../../actors/codec";
import { checkChamaCommand, checkWalletCommand } from "../../actors/command-policy";
import type { Envelope, Reply } from "../../actors/envelope";
import { shardOf } from "../../actors/shards";
import type { ChamaContext } from "../../machines/chama.context";
import type { ChamaCommand } from "../../machines/chama.events";
import type { WalletCommand } from "../../machines/wallet.events";
import type { WalletContext } from "../../machines/wallet.machine";
import { loadConfig } from "../../src/config";
import { maxMinorFor } from "../../lib/money";
import { SYSTEM_CLAIM, scopeOf, type PrincipalClaim } from "../../lib/principal";
import { cents, newChama, people, verifyIsClean, type Chama } from "../chama/support";
import { tokenFor } from "../support/auth";
import { deleteClusterState } from "../support/nats";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";

/**
 * The internal bus attacked from a plain NATS client, against one real node (real NATS, real
 * Postgres, nothing mocked). The node serves every shard subject, `<prefix>.wallet.<shard>.<id>` for
 * wallet commands and `<prefix>.chama.<shard>.<id>` for chama commands, and only acts on what a node
 * signed (actors/bus/). For every command
 * type the machines take (generated from the schema's list, which a unit test holds equal to the
 * machines' own event lists), each forgery is dropped under its reason, never answered, and changes
 * nothing in the database. Correctly signed envelopes that the caller may not send are refused by
 * the actor. Then a flood of garbage on every subject the node listens on, and normal load after it.
 */
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const RUN = crypto.randomUUID().slice(0, 8);
const PREFIX = `cofferbf${RUN}`;
const NODE_ID = `bf-${RUN}`;
const SHARDS = 8;
const LEASE_TTL_MS = 2_000;
const BUS_MAX_AGE_MS = 10_000;
const MAX_AMOUNT = "1000000"; // major units
const ENV = {
  NATS_URL,
  NATS_SUBJECT_PREFIX: PREFIX,
  NODE_ID,
  SHARDS: String(SHARDS),
  LEASE_TTL_MS: String(LEASE_TTL_MS),
  BUS_MAX_AGE_MS: String(BUS_MAX_AGE_MS),
  MAX_AMOUNT,
};
const MAX_MINOR_USD = maxMinorFor(BigInt(MAX_AMOUNT), "USD");

let t: TestNode;
let nc: NatsConnection;
let keys: BusKeys;
let sql: postgres.Sql;
let x: Targets;
let chama: Chama;

/** What the forgeries aim at. */
interface Targets {
  victim: string;
  victimOwner: string;
  attackerWallet: string;
  attacker: string;
  victimWithdrawal: string;
  chamaId: string;
  admin1: string;
  admin2: string;
  member: string;
  chamaWithdrawal: string;
}

beforeAll(async () => {
  t = await startTestNode("busforgery", ENV);
  nc = await connect({ servers: NATS_URL });
  keys = await BusKeys.load(loadConfig(ENV).clusterKeysFile);
  sql = postgres(t.db.url, { max: 2, onnotice: () => {} });
  await until(() => t.node.cluster!.status().shards.length === SHARDS, "the node to hold every shard", LEASE_TTL_MS * 3);

  const p = people("victim", "attacker", "admin1", "admin2", "member");
  const victim = await fundedWallet(t.api, "USD", "100.00", p.victim);
  const attackerWallet = await fundedWallet(t.api, "USD", "10.00", p.attacker);
  const withdrawal = await t.api("POST", `/v1/wallets/${victim}/withdrawals`, { amount: "5.00", destination: { type: "bank", account: "DE89 3704 0044 0532 0130 00" } });
  expect(withdrawal.status).toBe(201);
  chama = await newChama(t, { admins: [p.admin1, p.admin2], members: [p.member], fund: "50.00" });
  const pending = await chama.requested(p.member, "10.00");
  x = {
    victim,
    victimOwner: p.victim,
    attackerWallet,
    attacker: p.attacker,
    victimWithdrawal: withdrawal.body.id,
    chamaId: chama.id,
    admin1: p.admin1,
    admin2: p.admin2,
    member: p.member,
    chamaWithdrawal: pending.id,
  };
  // Make sure the targets live on different shards from the wallet used as "another wallet's subject".
  expect(subjectOf(attackerWallet)).not.toBe(subjectOf(victim));
  expect(await t.node.saga.idle()).toBe(true);
}, 60_000);

afterAll(async () => {
  await nc?.drain();
  await sql?.end({ timeout: 5 });
  await t?.stop();
  await deleteClusterState(PREFIX);
});

// ---------------------------------------------------------------------------------------------
// Fixtures: one valid command per type, with the principal that would be allowed to send it.
// ---------------------------------------------------------------------------------------------

const ADMIN_CLAIM: PrincipalClaim = { sub: "test-admin", role: "admin", permissions: [] };
const userClaim = (sub: string): PrincipalClaim => ({ sub, role: "user", permissions: [] });
/** How a platform admin acts inside a chama (memberIdOf): never a member's id. */
const ADMIN_IN_CHAMA = "admin#test-admin";
const SEALED_DESTINATION = {
  masked: { type: "bank", account: "**** 3000" },
  sealed: { kid: "k1", iv: "AAAAAAAAAAAAAAAA", ct: "AAAAAAAAAAAAAAAAAAAAAAAA", tag: "AAAAAAAAAAAAAAAAAAAAAA==" },
};

type Kind = "wallet" | "chama";

interface Fixture {
  kind: Kind;
  /** The wallet or chama the command is for (the last token of its subject). */
  target: string;
  envelope: Envelope;
}

const uuid = () => crypto.randomUUID();
const now = () => new Date().toISOString();

function envelopeOf(kind: Kind, command: Envelope["command"], principal: PrincipalClaim, key: string = uuid()): Envelope {
  const scope = principal.role === "system" ? "system" : scopeOf(principal);
  return { kind, command, principal, idempotency: { scope, key, fingerprint: `forged-${key}` } } as Envelope;
}

/**
 * A well-formed wallet command of `type` aimed at the victim's wallet, with the principal the actor
 * would let send it (the platform admin; the system for the system's own steps). Throws for a type
 * it does not know, so a new command type fails this suite until it has a fixture here.
 */
function walletFixture(type: string): { command: WalletCommand; principal: PrincipalClaim } {
  const at = now();
  const admin = (command: WalletCommand) => ({ command, principal: ADMIN_CLAIM });
  const system = (command: WalletCommand) => ({ command, principal: SYSTEM_CLAIM });
  switch (type) {
    case "wallet.open":
      return admin({ type, at, walletId: x.victim, ownerId: x.attacker, asset: "USD" });
    case "wallet.credit":
      return admin({ type, at, journalId: uuid(), amount: 9_999_900n, reference: "forged" });
    case "wallet.payment":
      return admin({ type, at, journalId: uuid(), amount: 9_000n });
    case "wallet.freeze":
    case "wallet.unfreeze":
    case "wallet.close":
      return admin({ type, at });
    case "withdrawal.request":
      return admin({ type, at, withdrawalId: uuid(), amount: 9_000n, destination: SEALED_DESTINATION });
    case "withdrawal.process":
      return admin({ type, at, withdrawalId: x.victimWithdrawal });
    case "withdrawal.complete":
      return admin({ type, at, withdrawalId: x.victimWithdrawal, journalId: uuid() });
    case "withdrawal.fail":
    case "withdrawal.cancel":
      return admin({ type, at, withdrawalId: x.victimWithdrawal, reason: "forged" });
    // Bank payouts through Stripe (the payout worker's): a forged return would mint money, a forged fail free a hold.
    case "withdrawal.payout.send":
      return system({ type, at, withdrawalId: x.victimWithdrawal });
    case "withdrawal.payout.complete":
      return system({ type, at, withdrawalId: x.victimWithdrawal, journalId: uuid() });
    case "withdrawal.payout.fail":
      return system({ type, at, withdrawalId: x.victimWithdrawal, reason: "forged" });
    case "withdrawal.payout.return":
      return system({ type, at, withdrawalId: uuid(), journalId: uuid(), amount: 9_999_900n, reason: "forged" });
    // Transaction monitoring: a forged hold would block a payout, a forged release let a held one go.
    case "withdrawal.hold":
      return system({ type, at, withdrawalId: x.victimWithdrawal, reason: "forged" });
    case "withdrawal.release":
    case "withdrawal.reject":
      return admin({ type, at, withdrawalId: x.victimWithdrawal, reason: "forged" });
    case "transfer.reserve":
      return admin({ type, at, transferId: uuid(), journalId: uuid(), toWalletId: x.attackerWallet, amount: 9_000n });
    case "transfer.credit":
      return system({ type, at, transferId: uuid(), journalId: uuid(), fromWalletId: x.attackerWallet, asset: "USD", amount: 9_999_900n });
    case "transfer.settle":
      return system({ type, at, transferId: uuid() });
    case "transfer.void":
      return system({ type, at, transferId: uuid(), journalId: uuid(), reason: "forged" });
    // Card money steps (the deposit saga's): a forged credit would mint money, a forged return refund it twice.
    case "deposit.credit":
      return system({ type, at, depositId: uuid(), journalId: uuid(), amount: 9_999_900n });
    case "deposit.refund.debit":
      return system({ type, at, depositId: uuid(), refundId: uuid(), journalId: uuid(), amount: 9_000n, force: true });
    case "deposit.refund.return":
      return system({ type, at, depositId: uuid(), refundId: uuid(), journalId: uuid(), amount: 9_999_900n });
    case "deposit.dispute.debit":
    case "deposit.dispute.return":
      return system({ type, at, depositId: uuid(), disputeId: "dp_forged", journalId: uuid(), amount: 9_000n });
    default:
      throw new Error(`no forgery fixture for the wallet command ${type}: add one to walletFixture`);
  }
}

/**
 * A well-formed chama command of `type` aimed at the chama, sent by whoever the actor would let send
 * it: the member it names acting as themself, the platform admin reporting money, the system for expiry.
 */
function chamaFixture(type: string): { command: ChamaCommand; principal: PrincipalClaim } {
  const at = now();
  const as = (who: string) => (command: ChamaCommand) => ({ command, principal: userClaim(who) });
  const byAdmin1 = as(x.admin1);
  const platform = (command: ChamaCommand) => ({ command, principal: ADMIN_CLAIM });
  const withdrawalId = x.chamaWithdrawal;
  switch (type) {
    case "chama.open":
      return byAdmin1({ type, at, chamaId: x.chamaId, name: "forged", asset: "USD", createdBy: x.admin1 });
    case "chama.freeze":
    case "chama.unfreeze":
    case "chama.close":
      return byAdmin1({ type, at, by: x.admin1 });
    case "chama.member.invite":
    case "chama.member.add":
      return byAdmin1({ type, at, memberId: x.attacker, role: "admin", by: x.admin1 });
    case "chama.member.accept":
      return as(x.attacker)({ type, at, memberId: x.attacker });
    case "chama.member.remove":
      return byAdmin1({ type, at, memberId: x.admin2, by: x.admin1, reason: "forged" });
    case "chama.member.role":
      return byAdmin1({ type, at, memberId: x.member, role: "admin", by: x.admin1 });
    case "chama.rules.change":
      return byAdmin1({ type, at, rules: { approvalsRequired: 1 }, by: x.admin1 });
    case "chama.deposit":
      return platform({ type, at, journalId: uuid(), memberId: x.admin1, amount: 9_999_900n, via: ADMIN_IN_CHAMA });
    case "chama.withdrawal.request":
      return as(x.member)({ type, at, withdrawalId: uuid(), memberId: x.member, amount: 1_000n, destination: SEALED_DESTINATION });
    case "chama.withdrawal.review":
      return as(x.admin2)({ type, at, withdrawalId, reviewerId: x.admin2, decision: "approve", note: "forged" });
    case "chama.withdrawal.park":
      return byAdmin1({ type, at, withdrawalId, by: x.admin1, note: "forged" });
    case "chama.withdrawal.continue":
      return byAdmin1({ type, at, withdrawalId, by: x.admin1 });
    case "chama.withdrawal.complete":
      return platform({ type, at, withdrawalId, journalId: uuid(), via: ADMIN_IN_CHAMA });
    case "chama.withdrawal.fail":
      return platform({ type, at, withdrawalId, reason: "forged", via: ADMIN_IN_CHAMA });
    case "chama.withdrawal.cancel":
      return byAdmin1({ type, at, withdrawalId, by: x.admin1, reason: "forged" });
    case "chama.withdrawal.expire":
      return { command: { type, at, withdrawalId }, principal: SYSTEM_CLAIM };
    case "chama.withdrawal.hold":
      return { command: { type, at, withdrawalId, note: "forged" }, principal: SYSTEM_CLAIM };
    case "chama.withdrawal.release":
      return platform({ type, at, withdrawalId, by: ADMIN_IN_CHAMA, decision: "release", note: "forged" });
    case "chama.transfer.credit":
      return { command: { type, at, transferId: uuid(), journalId: uuid(), memberId: x.admin1, fromWalletId: x.attackerWallet, amount: 9_999_900n }, principal: SYSTEM_CLAIM };
    case "chama.withdrawal.settle":
      return { command: { type, at, withdrawalId }, principal: SYSTEM_CLAIM };
    case "chama.withdrawal.void":
      return { command: { type, at, withdrawalId, journalId: uuid(), reason: "forged" }, principal: SYSTEM_CLAIM };
    default:
      throw new Error(`no forgery fixture for the chama command ${type}: add one to chamaFixture`);
  }
}

function fixture(kind: Kind, type: string): Fixture {
  if (kind === "wallet") {
    const { command, principal } = walletFixture(type);
    return { kind, target: x.victim, envelope: envelopeOf(kind, command, principal) };
  }
  const { command, principal } = chamaFixture(type);
  return { kind, target: x.chamaId, envelope: envelopeOf(kind, command, principal) };
}

/** The same envelope with its money (or who acts, or its time) changed. */
function tampered(envelope: Envelope): Envelope {
  const command = { ...envelope.command } as Record<string, unknown>;
  if (typeof command.amount === "bigint") command.amount = command.amount * 1_000n;
  else if (typeof command.by === "string") command.by = x.attacker;
  else command.at = new Date(Date.parse(String(command.at)) + 1_000).toISOString();
  return { ...envelope, command } as unknown as Envelope;
}

// ---------------------------------------------------------------------------------------------
// Talking to the node, watching its counters, and reading its database.
// ---------------------------------------------------------------------------------------------

/** The subject a command for `id` travels on: its kind's (wallet unless told) and its shard's (unless told). */
const subjectOf = (id: string, { kind = "wallet", shard = shardOf(id, SHARDS) }: { kind?: Kind; shard?: number } = {}) => `${PREFIX}.${kind}.${shard}.${id}`;
const seal = (subject: string, body: string, atMs = Date.now(), ring = keys) => sealRequest(ring, subject, body, atMs);
const bodyOf = (payload: string) => payload.slice(payload.indexOf("\n") + 1);
const headerOf = (payload: string) => payload.slice(0, payload.indexOf("\n"));

async function until(done: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(2);
  }
}

const dropped = (): Record<string, number> => ({ ...t.node.cluster!.status().busDropped });

/** How each drop counter moved since `before` (only the ones that did). */
function movedSince(before: Record<string, number>): Record<string, number> {
  const after = dropped();
  const moved: Record<string, number> = {};
  for (const reason of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[reason] ?? 0) - (before[reason] ?? 0);
    if (d !== 0) moved[reason] = d;
  }
  return moved;
}

interface Delivery {
  dropped: Record<string, number>;
  replies: Msg[];
}

/**
 * Publish one message (with a reply inbox unless told not to) and wait until the node either drops
 * it (a counter moves) or answers it. Then both connections flush, so a reply the node sent is in.
 */
async function deliver(subject: string, payload: string | Uint8Array, opts: { reply?: boolean; headers?: MsgHdrs } = {}): Promise<Delivery> {
  const before = dropped();
  const inbox = createInbox();
  const replies: Msg[] = [];
  const sub = nc.subscribe(inbox, { callback: (_e, m) => void replies.push(m) });
  await nc.flush();
  nc.publish(subject, payload, { ...(opts.reply === false ? {} : { reply: inbox }), ...(opts.headers ? { headers: opts.headers } : {}) });
  await until(() => replies.length > 0 || Object.keys(movedSince(before)).length > 0, `the node to answer or drop a message on ${subject}`);
  await t.node.nats!.flush();
  await nc.flush();
  sub.unsubscribe();
  return { dropped: movedSince(before), replies };
}

/** Send `envelope` (or a raw body) correctly signed for `subject`; the node's verified answer, or what it dropped. */
async function signed(subject: string, envelope: unknown): Promise<{ outcome?: Reply; dropped: Record<string, number>; payload: string }> {
  const { payload, nonce } = seal(subject, typeof envelope === "string" ? envelope : encode(envelope));
  const d = await deliver(subject, payload);
  expect(d.replies.length).toBeLessThanOrEqual(1);
  if (d.replies.length === 0) return { dropped: d.dropped, payload };
  const body = openReply(keys, nonce, d.replies[0]!.data);
  expect(body).toBeDefined(); // a node's answer is signed for this request
  return { outcome: decode<Reply>(body!), dropped: d.dropped, payload };
}

async function expectDropped(subject: string, payload: string | Uint8Array, reason: string, what: string, opts: { reply?: boolean } = {}): Promise<void> {
  const d = await deliver(subject, payload, opts);
  expect({ what, dropped: d.dropped, replies: d.replies.length }).toEqual({ what, dropped: { [reason]: 1 }, replies: 0 });
}

/**
 * Everything a refused command must leave as it was: every ledger, idempotency, outbox and chama
 * table row for row (the outbox's delivery marks aside: the relay sets those on its own), and what
 * the API says of the victim's wallet and the chama.
 */
async function state(): Promise<Record<string, unknown>> {
  const tables: Record<string, string> = {
    wallets: "select * from wallets",
    journals: "select * from journals",
    postings: "select * from postings",
    outbox: "select seq, id, aggregate_id, type, payload from events",
    idempotency_keys: "select scope, key, fingerprint, status, body::text from idempotency_keys",
    withdrawals: "select * from withdrawals",
    transfers: "select * from transfers",
    chamas: "select * from chamas",
    chama_members: "select * from chama_members",
    chama_withdrawals: "select * from chama_withdrawals",
    chama_reviews: "select * from chama_reviews",
    chama_audit: "select * from chama_audit",
  };
  const out: Record<string, unknown> = {};
  for (const [name, query] of Object.entries(tables)) {
    const [row] = await sql.unsafe(`select count(*)::int as n, coalesce(md5(string_agg(r::text, '|' order by r::text)), '') as h from (${query}) r`);
    out[name] = row;
  }
  out.victim = (await t.api("GET", `/v1/wallets/${x.victim}`)).body;
  out.attacker = (await t.api("GET", `/v1/wallets/${x.attackerWallet}`)).body;
  out.chama = await chama.view();
  out.chamaWithdrawal = await chama.withdrawal(x.chamaWithdrawal);
  return out;
}

async function expectUnchangedBy(action: () => Promise<void>): Promise<void> {
  const before = await state();
  await action();
  expect(await state()).toEqual(before);
  await verifyIsClean(t);
}

function expectProblem(outcome: Reply | undefined, status: number, code: string): void {
  expect({ status: outcome?.status, code: outcome?.body.code }).toEqual({ status, code });
}

// ---------------------------------------------------------------------------------------------
// 1. Forgeries, for every command type.
// ---------------------------------------------------------------------------------------------

const ALL_TYPES: [Kind, string][] = [
  ...BUS_COMMAND_TYPES.wallet.map((type) => ["wallet", type] as [Kind, string]),
  ...BUS_COMMAND_TYPES.chama.map((type) => ["chama", type] as [Kind, string]),
];

describe("a forged internal envelope is dropped, never answered, and changes nothing", () => {
  test("the fixtures cover every command type and refuse one they do not know", () => {
    expect(ALL_TYPES.length).toBe(BUS_COMMAND_TYPES.wallet.length + BUS_COMMAND_TYPES.chama.length);
    expect(ALL_TYPES.length).toBeGreaterThan(30);
    expect(() => fixture("wallet", "wallet.teleport")).toThrow(/no forgery fixture/);
    expect(() => fixture("chama", "chama.teleport")).toThrow(/no forgery fixture/);
  });

  for (const [kind, type] of ALL_TYPES) {
    test(`a forged ${kind} ${type} is dropped whether unsigned, under a foreign or unknown key, tampered, re-addressed, expired, early, without a reply subject or replayed`, async () => {
      const f = fixture(kind, type);
      const subject = subjectOf(f.target, { kind });
      const body = encode(f.envelope);

      // The forgeries are refused for being forged, not for their shape or sender: correctly signed,
      // the same envelope passes the node's guard and the actor's policy check.
      expect(parseEnvelope(decode(body))).toMatchObject({ ok: true });
      const guard = new BusGuard(keys, { maxAgeMs: BUS_MAX_AGE_MS, shardCount: SHARDS });
      expect(guard.openCommand(subject, new TextEncoder().encode(seal(subject, body).payload))).toBeDefined();
      if (kind === "wallet") checkWalletCommand(f.envelope.principal, f.envelope.command as WalletCommand, { ownerId: x.victimOwner } as WalletContext);
      else checkChamaCommand(f.envelope.principal, f.envelope.command as ChamaCommand, {} as ChamaContext);

      const real = () => seal(subject, body).payload;
      const variants: { name: string; subject: string; payload: string; reason: string; reply?: boolean }[] = [
        { name: "unsigned, raw JSON", subject, payload: body, reason: "malformed" },
        { name: "signed with a foreign key under the real key id", subject, payload: seal(subject, body, Date.now(), BusKeys.of(keys.activeKid, { [keys.activeKid]: randomBytes(32) })).payload, reason: "bad_mac" },
        { name: "signed with a key id no node has", subject, payload: seal(subject, body, Date.now(), BusKeys.of("forger", { forger: randomBytes(32) })).payload, reason: "unknown_key" },
        { name: "body tampered after signing", subject, payload: `${headerOf(real())}\n${encode(tampered(f.envelope))}`, reason: "bad_mac" },
        { name: "a real signature sent on another wallet's subject", subject: subjectOf(x.attackerWallet, { kind }), payload: real(), reason: "bad_mac" },
        { name: "signed longer ago than BUS_MAX_AGE_MS", subject, payload: seal(subject, body, Date.now() - BUS_MAX_AGE_MS - 1_000).payload, reason: "expired" },
        { name: "signed further ahead than BUS_MAX_AGE_MS", subject, payload: seal(subject, body, Date.now() + BUS_MAX_AGE_MS + 1_000).payload, reason: "expired" },
        { name: "a real signature with no reply subject", subject, payload: real(), reason: "no_reply_subject", reply: false },
      ];
      expect(bodyOf(variants[3]!.payload)).not.toBe(body);

      await expectUnchangedBy(async () => {
        for (const v of variants) await expectDropped(v.subject, v.payload, v.reason, v.name, { reply: v.reply });

        // Replay: the same signed bytes twice. To replay this very command without it doing anything,
        // its idempotency scope is another caller's, which the actor refuses (403, nothing written);
        // the second copy never reaches the actor at all.
        const refusable = { ...f.envelope, idempotency: { ...f.envelope.idempotency, scope: `user:nobody-${RUN}` } };
        const first = await signed(subject, refusable);
        expect(first.dropped).toEqual({});
        expectProblem(first.outcome, 403, "FORBIDDEN");
        await expectDropped(subject, first.payload, "replay", "the same signed bytes again");
      });
    });
  }

  test("a harmless signed credit is accepted once; the identical bytes again are dropped as a replay; re-signed, the key replays the answer", async () => {
    const subject = subjectOf(x.victim);
    const envelope = envelopeOf("wallet", { type: "wallet.credit", at: now(), journalId: uuid(), amount: 1n, reference: "replay-probe" }, ADMIN_CLAIM, `replay-probe-${RUN}`);
    const before = await state();
    const first = await signed(subject, envelope);
    expect(first.dropped).toEqual({});
    expect(first.outcome?.status).toBe(201);
    const after = await state();
    expect(cents((after.victim as any).balance.posted) - cents((before.victim as any).balance.posted)).toBe(1n);
    expect((after.journals as { n: number }).n).toBe((before.journals as { n: number }).n + 1);

    await expectUnchangedBy(async () => {
      await expectDropped(subject, first.payload, "replay", "the identical bytes again");
      // Signed afresh (what a node's retry does), the idempotency key answers as the first time.
      const again = await signed(subject, envelope);
      expect(again.dropped).toEqual({});
      expect(again.outcome).toEqual(first.outcome!);
    });
    expect(await state()).toEqual(after);
    await verifyIsClean(t);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Authenticated, but not allowed: the guard's schema or the actor refuses.
// ---------------------------------------------------------------------------------------------

describe("a correctly signed envelope the caller may not send is refused, and changes nothing", () => {
  const credit = (amount: bigint, principal = ADMIN_CLAIM) =>
    envelopeOf("wallet", { type: "wallet.credit", at: now(), journalId: uuid(), amount }, principal);

  test("an amount over the bus's ceiling (10^70, or 10^60 + 1 minor units) is dropped as invalid before any actor sees it", async () => {
    await expectUnchangedBy(async () => {
      for (const amount of [10n ** 70n, 10n ** 60n + 1n]) {
        const r = await signed(subjectOf(x.victim), credit(amount));
        expect({ amount: String(amount), outcome: r.outcome, dropped: r.dropped }).toEqual({ amount: String(amount), outcome: undefined, dropped: { invalid: 1 } });
      }
    });
  });

  test("every command that moves money, one minor unit over MAX_AMOUNT, is refused by the machine with LIMIT_EXCEEDED", async () => {
    const moving = ALL_TYPES.map(([kind, type]) => fixture(kind, type)).filter((f) => "amount" in f.envelope.command);
    // credit, payment, withdrawal request, transfer reserve and credit, the card money steps; chama deposit, contribution credit and withdrawal request.
    expect(moving.map((f) => `${f.kind}:${f.envelope.command.type}`).sort()).toEqual(
      [
        "chama:chama.deposit",
        "chama:chama.transfer.credit",
        "chama:chama.withdrawal.request",
        "wallet:deposit.credit",
        "wallet:deposit.dispute.debit",
        "wallet:deposit.dispute.return",
        "wallet:deposit.refund.debit",
        "wallet:deposit.refund.return",
        "wallet:transfer.credit",
        "wallet:transfer.reserve",
        "wallet:wallet.credit",
        "wallet:wallet.payment",
        "wallet:withdrawal.payout.return",
        "wallet:withdrawal.request",
      ].sort(),
    );
    const { idempotency_keys: _k, ...before } = await state();
    let sent = 0;
    for (const f of moving) {
      for (const amount of [MAX_MINOR_USD + 1n, 10n ** 60n]) {
        // A fresh key each time: a repeated key would only replay the first refusal.
        const over = envelopeOf(f.kind, { ...f.envelope.command, amount } as WalletCommand | ChamaCommand, f.envelope.principal, `limit-${RUN}-${uuid()}`);
        const r = await signed(subjectOf(f.target, { kind: f.kind }), over);
        sent++;
        const what = `${f.kind} ${f.envelope.command.type} of ${amount}`;
        expect({ what, dropped: r.dropped, status: r.outcome?.status, code: r.outcome?.body.code }).toEqual({ what, dropped: {}, status: 422, code: "LIMIT_EXCEEDED" });
      }
    }
    // Nothing moved. The only trace is the refusal itself, remembered under each caller's key (as
    // every business refusal is, so a retry with the key answers the same).
    const { idempotency_keys: _k2, ...after } = await state();
    expect(after).toEqual(before);
    const remembered = await sql`select status, body->>'code' as code, count(*)::int as n from idempotency_keys where key like ${`limit-${RUN}-%`} group by 1, 2`;
    expect(remembered.map((r) => ({ ...r }))).toEqual([{ status: 422, code: "LIMIT_EXCEEDED", n: sent }]);
  });

  test("a command for a wallet sent on another shard's subject, or on a subject naming another id, is dropped as wrong_shard", async () => {
    const home = shardOf(x.victim, SHARDS);
    const otherShard = (home + 1) % SHARDS;
    await expectUnchangedBy(async () => {
      // Signed for the wrong subject itself: the signature is good, the routing is not.
      const wrongShard = await signed(subjectOf(x.victim, { shard: otherShard }), credit(100n));
      expect({ outcome: wrongShard.outcome, dropped: wrongShard.dropped }).toEqual({ outcome: undefined, dropped: { wrong_shard: 1 } });
      // wallet.open names its wallet: on the victim's subject it must name the victim.
      const open = envelopeOf("wallet", { type: "wallet.open", at: now(), walletId: x.attackerWallet, ownerId: x.attacker, asset: "USD" }, ADMIN_CLAIM);
      const misnamed = await signed(subjectOf(x.victim), open);
      expect({ outcome: misnamed.outcome, dropped: misnamed.dropped }).toEqual({ outcome: undefined, dropped: { wrong_shard: 1 } });
      // The last token is not an id at all.
      const notAnId = await signed(`${PREFIX}.wallet.${home}.not-a-wallet`, credit(100n));
      expect({ outcome: notAnId.outcome, dropped: notAnId.dropped }).toEqual({ outcome: undefined, dropped: { wrong_shard: 1 } });
    });
  });

  test("a chama command on the wallet subject, or a wallet command on the chama subject, is dropped as wrong_shard", async () => {
    const chamaCommand = fixture("chama", "chama.member.add").envelope;
    await expectUnchangedBy(async () => {
      const onWallet = await signed(subjectOf(x.chamaId, { kind: "wallet" }), chamaCommand);
      expect({ outcome: onWallet.outcome, dropped: onWallet.dropped }).toEqual({ outcome: undefined, dropped: { wrong_shard: 1 } });
      const onChama = await signed(subjectOf(x.victim, { kind: "chama" }), credit(100n));
      expect({ outcome: onChama.outcome, dropped: onChama.dropped }).toEqual({ outcome: undefined, dropped: { wrong_shard: 1 } });
    });
  });

  test("a transfer.reserve on the victim's wallet with the attacker as principal answers 404 WALLET_NOT_FOUND", async () => {
    const reserve = envelopeOf(
      "wallet",
      { type: "transfer.reserve", at: now(), transferId: uuid(), journalId: uuid(), toWalletId: x.attackerWallet, amount: 5_000n },
      userClaim(x.attacker),
    );
    await expectUnchangedBy(async () => expectProblem((await signed(subjectOf(x.victim), reserve)).outcome, 404, "WALLET_NOT_FOUND"));
  });

  test("the system's own steps sent by a user or an admin, and a user's command sent as the system, answer 403", async () => {
    const systemOnly = ALL_TYPES.map(([kind, type]) => fixture(kind, type)).filter((f) => f.envelope.principal.role === "system");
    expect(systemOnly.map((f) => `${f.kind}:${f.envelope.command.type}`).sort()).toEqual([
      "chama:chama.transfer.credit",
      "chama:chama.withdrawal.expire",
      "chama:chama.withdrawal.hold",
      "chama:chama.withdrawal.settle",
      "chama:chama.withdrawal.void",
      "wallet:deposit.credit",
      "wallet:deposit.dispute.debit",
      "wallet:deposit.dispute.return",
      "wallet:deposit.refund.debit",
      "wallet:deposit.refund.return",
      "wallet:transfer.credit",
      "wallet:transfer.settle",
      "wallet:transfer.void",
      "wallet:withdrawal.hold",
      "wallet:withdrawal.payout.complete",
      "wallet:withdrawal.payout.fail",
      "wallet:withdrawal.payout.return",
      "wallet:withdrawal.payout.send",
    ]);
    await expectUnchangedBy(async () => {
      for (const f of systemOnly) {
        for (const principal of [ADMIN_CLAIM, userClaim(x.victimOwner), userClaim(x.admin1)]) {
          const r = await signed(subjectOf(f.target, { kind: f.kind }), envelopeOf(f.kind, f.envelope.command, principal));
          const what = `${f.envelope.command.type} by ${principal.role} ${principal.sub}`;
          expect({ what, status: r.outcome?.status, code: r.outcome?.body.code }).toEqual({ what, status: 403, code: "FORBIDDEN" });
        }
      }
      const payment = envelopeOf("wallet", { type: "wallet.payment", at: now(), journalId: uuid(), amount: 100n }, SYSTEM_CLAIM);
      expectProblem((await signed(subjectOf(x.victim), payment)).outcome, 403, "FORBIDDEN");
    });
  });

  test("a chama.member.add 'by' the real admin with the attacker as principal answers 403", async () => {
    const add = envelopeOf("chama", { type: "chama.member.add", at: now(), memberId: x.attacker, role: "admin", by: x.admin1 }, userClaim(x.attacker));
    await expectUnchangedBy(async () => expectProblem((await signed(subjectOf(x.chamaId, { kind: "chama" }), add)).outcome, 403, "FORBIDDEN"));
  });

  test("a chama.withdrawal.review 'as' the second admin with the first admin as principal answers 403", async () => {
    const review = envelopeOf(
      "chama",
      { type: "chama.withdrawal.review", at: now(), withdrawalId: x.chamaWithdrawal, reviewerId: x.admin2, decision: "approve" },
      userClaim(x.admin1),
    );
    await expectUnchangedBy(async () => expectProblem((await signed(subjectOf(x.chamaId, { kind: "chama" }), review)).outcome, 403, "FORBIDDEN"));
  });

  test("an envelope whose idempotency scope is another caller's answers 403, and does not replay that caller's stored answer", async () => {
    // The victim pays with their own key; the stored answer sits under scope user:<victim>.
    const key = `victims-key-${RUN}`;
    const paid = await t.api("POST", `/v1/wallets/${x.victim}/payments`, { amount: "1.00", reference: "victims-own" }, { as: { sub: x.victimOwner, role: "user" }, key });
    expect(paid.status).toBe(201);
    const [stored] = await sql`select scope, fingerprint from idempotency_keys where key = ${key}`;
    expect(stored!.scope).toBe(scopeOf({ role: "user", sub: x.victimOwner }));
    // An admin (or anyone with a node key) claims that scope and key, fingerprint and all: without
    // the actor's scope check this would hand back the victim's answer.
    const payment = envelopeOf("wallet", { type: "wallet.payment", at: now(), journalId: uuid(), amount: 100n, reference: "victims-own" }, ADMIN_CLAIM);
    const theirs = { ...payment, idempotency: { scope: stored!.scope, key, fingerprint: stored!.fingerprint } };
    await expectUnchangedBy(async () => {
      const r = await signed(subjectOf(x.victim), theirs);
      expectProblem(r.outcome, 403, "FORBIDDEN");
      expect(r.outcome?.body).not.toEqual(paid.body);
      expect(JSON.stringify(r.outcome)).not.toContain("victims-own");
    });
  });

  test("an envelope with no idempotency, no principal, an unknown field or an invented role is dropped as invalid", async () => {
    const base = credit(100n) as unknown as Record<string, unknown>;
    const { idempotency: _i, ...noIdempotency } = base;
    const { principal: _p, ...noPrincipal } = base;
    const cases: [string, unknown][] = [
      ["no idempotency", noIdempotency],
      ["no principal", noPrincipal],
      ["an unknown top-level field", { ...base, sudo: true }],
      ["an unknown command field", { ...base, command: { ...(base.command as object), walletId: x.attackerWallet } }],
      ["an invented role", { ...base, principal: { sub: "x", role: "root", permissions: [] } }],
      ["a negative amount", credit(-100n)],
      ["a zero amount", credit(0n)],
      ["an amount as a number", { ...base, command: { ...(base.command as object), amount: 100 } }],
      ["a chama command under the wallet kind", { ...base, command: fixture("chama", "chama.member.add").envelope.command }],
      ["not JSON", "{{{"],
      ["a bigint that is not a number", '{"$bigint":"x"}'],
    ];
    await expectUnchangedBy(async () => {
      for (const [what, envelope] of cases) {
        const r = await signed(subjectOf(x.victim), envelope);
        expect({ what, outcome: r.outcome, dropped: r.dropped }).toEqual({ what, outcome: undefined, dropped: { invalid: 1 } });
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 3. A flood of garbage on every subject, then normal load.
// ---------------------------------------------------------------------------------------------

describe("a bad message never hurts a node", () => {
  test("100 malformed messages on every subject the node listens on, then normal load: every request answered, the node healthy", async () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const fakeMac = "A".repeat(43);
    const fakeNonce = "n".repeat(32);
    /** Unsigned garbage, and why the guard refuses each (when it has a reply subject). */
    const garbage: { name: string; payload: Uint8Array; reason: string }[] = [
      { name: "{{{", payload: enc("{{{"), reason: "malformed" },
      { name: "empty", payload: new Uint8Array(0), reason: "malformed" },
      { name: "300 KiB", payload: new Uint8Array(300 * 1024).fill(0x61), reason: "too_large" },
      { name: "invalid UTF-8", payload: new Uint8Array([0xff, 0xfe, 0x0a, 0xc3, 0x28, 0xa0, 0xa1]), reason: "malformed" },
      { name: "high bytes, no newline", payload: new Uint8Array(2_048).map((_, i) => 0x80 + (i % 0x80)), reason: "malformed" },
      { name: "a header line with no body", payload: enc(`c1 ${keys.activeKid} ${Date.now()} ${fakeNonce} ${fakeMac}`), reason: "malformed" },
      { name: "a header line with an empty body and a made-up MAC", payload: enc(`c1 ${keys.activeKid} ${Date.now()} ${fakeNonce} ${fakeMac}\n`), reason: "bad_mac" },
      { name: "a header line under an unknown key", payload: enc(`c1 nobody ${Date.now()} ${fakeNonce} ${fakeMac}\n{}`), reason: "unknown_key" },
      { name: "JSON nested 100k deep", payload: enc(deep), reason: "malformed" },
      { name: '{"$bigint":"x"}', payload: enc('{"$bigint":"x"}'), reason: "malformed" },
      { name: "a bare newline", payload: enc("\n"), reason: "malformed" },
      { name: "NUL bytes", payload: new Uint8Array(64), reason: "malformed" },
    ];
    /** Bodies that are correctly signed but are not envelopes: they pass the signature and fail decoding or the schema. */
    const signedBodies = ["{{{", deep, '{"$bigint":"x"}', "", "null", "[]", '{"kind":"wallet","command":{"$bigint":"1"}}', `{"kind":"wallet","command":${"[".repeat(5_000)}${"]".repeat(5_000)}}`];

    const shardSubjects = Array.from({ length: SHARDS }, (_, shard) => shard);
    expect(t.node.cluster!.status().shards).toEqual(shardSubjects);
    const inbox = createInbox();
    const stray: Msg[] = [];
    const strays = nc.subscribe(`${inbox}.>`, { callback: (_e, m) => void stray.push(m) });
    const before = dropped();
    const expected: Record<string, number> = {};
    const expect1 = (reason: string) => (expected[reason] = (expected[reason] ?? 0) + 1);
    const waitForDrops = async (what: string) => {
      await nc.flush();
      await until(() => JSON.stringify(sorted(movedSince(before))) === JSON.stringify(sorted(expected)), what, 15_000).catch((e) => {
        throw new Error(`${(e as Error).message}: moved ${JSON.stringify(movedSince(before))}, expected ${JSON.stringify(expected)}`);
      });
    };

    let sent = 0;
    // Each shard subject of each kind: unsigned garbage with and without a reply subject, some with headers, and signed non-envelopes.
    const kinds: Kind[] = ["wallet", "chama"];
    for (const kind of kinds) for (const shard of shardSubjects) {
      for (let i = 0; i < 100; i++) {
        const subject = `${PREFIX}.${kind}.${shard}.${uuid()}`;
        const reply = `${inbox}.${sent++}`;
        const pick = i % (garbage.length * 2 + signedBodies.length);
        if (pick < garbage.length * 2) {
          const g = garbage[pick % garbage.length]!;
          const withReply = pick < garbage.length;
          const h = i % 3 === 0 ? headers() : undefined;
          h?.set("Authorization", "Bearer {{{");
          nc.publish(subject, g.payload, { ...(withReply ? { reply } : {}), ...(h ? { headers: h } : {}) });
          expect1(withReply ? g.reason : "no_reply_subject");
        } else {
          nc.publish(subject, seal(subject, signedBodies[pick - garbage.length * 2]!).payload, { reply });
          expect1("invalid");
        }
      }
      await waitForDrops(`the 100 messages on ${kind} shard ${shard} to be dropped`);
    }
    // The node's status subject (its health probe): unsigned garbage, with and without a reply subject.
    const statusSubject = `${PREFIX}.cluster.status.${NODE_ID}`;
    for (let i = 0; i < 100; i++) {
      const g = garbage[i % garbage.length]!;
      nc.publish(statusSubject, g.payload, i % 2 === 0 ? { reply: `${inbox}.${sent++}` } : undefined);
      expect1(g.reason);
    }
    await waitForDrops("the 100 messages on the status subject to be dropped");

    // The NATS API: answered (it is for callers), with a problem, never taken down. Half carry a real token.
    const apiReplies: Msg[] = [];
    const apiInbox = createInbox();
    const apiSub = nc.subscribe(`${apiInbox}.>`, { callback: (_e, m) => void apiReplies.push(m) });
    const token = await tokenFor();
    const apiGarbage = [...garbage.map((g) => g.payload), enc(`${"[".repeat(30_000)}${"]".repeat(30_000)}`), enc('{"ownerId":{"$bigint":"x"},"asset":"USD"}')];
    for (let i = 0; i < 100; i++) {
      const h = headers();
      if (i % 2 === 0) h.set("Authorization", `Bearer ${token}`);
      h.set("Idempotency-Key", uuid());
      nc.publish(`${PREFIX}.v1.wallets.create`, apiGarbage[i % apiGarbage.length]!, { reply: `${apiInbox}.${i}`, headers: h });
    }
    await nc.flush();
    await until(() => apiReplies.length === 100, "an answer to each of the 100 malformed API requests", 15_000);
    apiSub.unsubscribe();
    // Each answered as REST would: too large (checked first), else not authenticated, else not valid input.
    for (const m of apiReplies) {
      const i = Number(m.subject.split(".").at(-1));
      const size = apiGarbage[i % apiGarbage.length]!.length;
      const wanted = size > 64 * 1024 ? [413, "PAYLOAD_TOO_LARGE"] : i % 2 === 1 ? [401, "UNAUTHENTICATED"] : [400, "VALIDATION_FAILED"];
      const r = JSON.parse(m.string()) as Reply;
      expect({ i, size, got: [r.status, r.body.code] }).toEqual({ i, size, got: wanted });
    }

    // Nothing on the bus subjects was ever answered.
    await t.node.nats!.flush();
    await nc.flush();
    strays.unsubscribe();
    expect(stray.map((m) => m.subject)).toEqual([]);
    expect(Object.values(expected).reduce((a, b) => a + b, 0)).toBe(kinds.length * SHARDS * 100 + 100);

    // Normal load: 50 payments over REST and 20 requests over the NATS API, all at once.
    const payer = await fundedWallet(t.api, "USD", "100.00", `payer-${RUN}`);
    const receiver = await fundedWallet(t.api, "USD", undefined, `receiver-${RUN}`);
    const call = async (operation: string, payload: unknown, key?: string) => {
      const h = headers();
      h.set("Authorization", `Bearer ${token}`);
      if (key) h.set("Idempotency-Key", key);
      return JSON.parse((await nc.request(`${PREFIX}.v1.${operation}`, JSON.stringify(payload), { timeout: 10_000, headers: h })).string()) as Reply;
    };
    const [payments, credits, reads] = await Promise.all([
      Promise.all(Array.from({ length: 50 }, () => t.api("POST", `/v1/wallets/${payer}/payments`, { amount: "1.00" }))),
      Promise.all(Array.from({ length: 10 }, () => call("wallets.credits.create", { walletId: receiver, amount: "2.50" }, uuid()))),
      Promise.all(Array.from({ length: 10 }, () => call("wallets.get", { walletId: payer }))),
    ]);
    expect(payments.map((p) => p.status)).toEqual(Array(50).fill(201));
    expect(credits.map((c) => c.status)).toEqual(Array(10).fill(201));
    expect(reads.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect((await t.api("GET", `/v1/wallets/${payer}`)).body.balance).toMatchObject({ posted: "50.00", available: "50.00" });
    expect((await call("wallets.get", { walletId: receiver })).body).toMatchObject({ balance: { posted: "25.00" } });

    // Healthy: it still answers a signed status request, renews its membership twice more (each
    // round first probes itself over NATS), holds every shard, and says so on /health.
    const { payload, nonce } = seal(statusSubject, "");
    const status = openReply(keys, nonce, (await nc.request(statusSubject, payload, { timeout: 2_000 })).data);
    expect(JSON.parse(status!)).toMatchObject({ nodeId: NODE_ID, healthy: true });
    const nodes = await new Kvm(jetstream(nc)).open(`${PREFIX}_nodes`);
    const revision = async () => (await nodes.get(`node.${NODE_ID}`))?.revision ?? 0;
    const start = await revision();
    const deadline = Date.now() + LEASE_TTL_MS * 3;
    while ((await revision()) < start + 2) {
      if (Date.now() > deadline) throw new Error("the node stopped renewing its membership after the flood");
      await Bun.sleep(50);
    }
    expect(t.node.cluster!.health()).toEqual({ ok: true });
    expect(t.node.cluster!.status().shards).toEqual(shardSubjects);
    const health = await t.api("GET", "/health", undefined, { token: null });
    expect({ status: health.status, body: health.body }).toEqual({ status: 200, body: { status: "ok" } });
    await verifyIsClean(t);
  }, 30_000);
});

function sorted(record: Record<string, number>): [string, number][] {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}
