import { describe, expect, test } from "bun:test";
import { decode, encode } from "../../actors/codec";
import {
  assertChamaInvariants,
  availableOf,
  CHAMA_LIMITS,
  type ChamaContext,
  DEFAULT_CHAMA_RULES,
  heldOf,
  nextExpiryAt,
  overdueWithdrawalIds,
} from "../../machines/chama.context";
import { type ChamaRules, SYSTEM_ACTOR } from "../../machines/chama.events";
import { chamaMachine } from "../../machines/chama.machine";
import { SYSTEM_ACCOUNT } from "../../machines/journal";
import {
  CHAMA,
  chama,
  type ChamaCmd,
  type ChamaSnapshot,
  DAY,
  expectRejected,
  HOUR_MS,
  later,
  ofType,
  run,
  show,
  single,
  step,
  T0,
  unopened,
} from "./chama.drive";

/** Destinations reach the machine sealed (the edge seals them); the machine only carries them. */
const bank = { masked: { type: "bank", account: "****3456" }, sealed: { kid: "k1", iv: "iv-1", ct: "sealed-account-bytes", tag: "tag-1" } };

const request = (withdrawalId: string, memberId: string, amount: bigint, at?: string): ChamaCmd => ({
  type: "chama.withdrawal.request",
  withdrawalId,
  memberId,
  amount,
  destination: bank,
  ...(at ? { at } : {}),
});
const approve = (withdrawalId: string, reviewerId: string, at?: string): ChamaCmd => ({
  type: "chama.withdrawal.review",
  withdrawalId,
  reviewerId,
  decision: "approve",
  ...(at ? { at } : {}),
});
const rejectBy = (withdrawalId: string, reviewerId: string, note?: string): ChamaCmd => ({
  type: "chama.withdrawal.review",
  withdrawalId,
  reviewerId,
  decision: "reject",
  ...(note ? { note } : {}),
});
const proceed = (withdrawalId: string, by: string, at?: string): ChamaCmd => ({ type: "chama.withdrawal.continue", withdrawalId, by, ...(at ? { at } : {}) });
const complete = (withdrawalId: string): ChamaCmd => ({ type: "chama.withdrawal.complete", withdrawalId, journalId: `j-${withdrawalId}` });
const fail = (withdrawalId: string, reason = "bank refused the transfer"): ChamaCmd => ({ type: "chama.withdrawal.fail", withdrawalId, reason });
const cancel = (withdrawalId: string, by: string): ChamaCmd => ({ type: "chama.withdrawal.cancel", withdrawalId, by });
const park = (withdrawalId: string, by: string): ChamaCmd => ({ type: "chama.withdrawal.park", withdrawalId, by, note: "unusual destination" });
const expire = (withdrawalId: string, at: string): ChamaCmd => ({ type: "chama.withdrawal.expire", withdrawalId, at });
const deposit = (memberId: string, amount: bigint, journalId = `j-${memberId}-${amount}`): ChamaCmd => ({ type: "chama.deposit", journalId, memberId, amount });
const rules = (by: string, patch: Partial<ChamaRules>): ChamaCmd => ({ type: "chama.rules.change", rules: patch, by });

/** dave asked for 300 from the default chama (1000 deposited, one approval needed). */
const requested = (): ChamaSnapshot => run(chama(), request("wd-1", "dave", 300n));
const approved = (): ChamaSnapshot => run(requested(), approve("wd-1", "bob"));
const processing = (): ChamaSnapshot => run(approved(), proceed("wd-1", "dave"));

const statusOf = (s: ChamaSnapshot, id: string) => s.context.withdrawals[id]?.status;

/** One of every command a chama can be sent, for "refuses everything" checks. */
const EVERY_COMMAND: ChamaCmd[] = [
  { type: "chama.freeze", by: "alice" },
  { type: "chama.unfreeze", by: "alice" },
  { type: "chama.member.invite", memberId: "zed", role: "member", by: "alice" },
  { type: "chama.member.accept", memberId: "zed" },
  { type: "chama.member.add", memberId: "zed", role: "member", by: "alice" },
  { type: "chama.member.remove", memberId: "dave", by: "alice" },
  { type: "chama.member.role", memberId: "dave", role: "admin", by: "alice" },
  rules("alice", { maxPerDay: 5n }),
  deposit("dave", 1n),
  request("wd-x", "dave", 1n),
  approve("wd-x", "bob"),
  park("wd-x", "bob"),
  proceed("wd-x", "dave"),
  complete("wd-x"),
  fail("wd-x"),
  cancel("wd-x", "dave"),
  expire("wd-x", later(100 * DAY)),
];

describe("opening", () => {
  test("a chama opens active with its creator as the only admin, default rules and nothing in it", () => {
    const { next, effects } = step(unopened(), { type: "chama.open", chamaId: CHAMA, name: "Umoja", asset: "KES", createdBy: "alice" });
    expect(next.value).toBe("active");
    expect(next.context).toMatchObject({ chamaId: CHAMA, name: "Umoja", asset: "KES", createdBy: "alice", posted: 0n, rules: DEFAULT_CHAMA_RULES });
    expect(next.context.members).toEqual({ alice: { role: "admin", joinedAt: T0, contributed: 0n, withdrawn: 0n } });
    expect(effects).toEqual([
      { type: "chama.opened", chamaId: CHAMA, asset: "KES", at: T0, name: "Umoja", createdBy: "alice" },
      {
        type: "chama.audit.recorded",
        chamaId: CHAMA,
        asset: "KES",
        at: T0,
        actor: "alice",
        action: "chama.open",
        target: CHAMA,
        after: { name: "Umoja", asset: "KES", admin: "alice" },
      },
    ]);
  });

  test("opening an existing chama again is refused with CHAMA_EXISTS", () => {
    expectRejected(chama(), { type: "chama.open", chamaId: CHAMA, name: "Other", asset: "USD", createdBy: "mallory" }, "CHAMA_EXISTS");
  });

  test("every command to a chama that was never opened is refused with CHAMA_NOT_FOUND", () => {
    for (const command of EVERY_COMMAND) expectRejected(unopened(), command, "CHAMA_NOT_FOUND");
  });
});

describe("members", () => {
  test("an admin invites, the invitee accepts and joins with the invited role", () => {
    const invited = step(chama(), { type: "chama.member.invite", memberId: "zed", role: "member", by: "alice" });
    expect(invited.next.context.invitations).toEqual({ zed: { role: "member", invitedBy: "alice", invitedAt: T0 } });
    expect(invited.effects.map((e) => e.type)).toEqual(["chama.member.invited", "chama.audit.recorded"]);

    const joined = step(invited.next, { type: "chama.member.accept", memberId: "zed", at: later(HOUR_MS) });
    expect(joined.next.context.invitations).toEqual({});
    expect(joined.next.context.members["zed"]).toEqual({ role: "member", joinedAt: later(HOUR_MS), contributed: 0n, withdrawn: 0n });
    expect(single(joined.effects, "chama.member.joined")).toMatchObject({ memberId: "zed", role: "member", by: "zed" });
    expect(single(joined.effects, "chama.audit.recorded")).toMatchObject({ actor: "zed", action: "chama.member.accept", before: { invited: "member" }, after: { role: "member" } });
  });

  test("accepting without an invitation is refused with NOT_INVITED", () => {
    expectRejected(chama(), { type: "chama.member.accept", memberId: "zed" }, "NOT_INVITED");
  });

  test("a member who is not an admin cannot invite, add, change roles or remove others: FORBIDDEN", () => {
    const s = chama();
    expectRejected(s, { type: "chama.member.invite", memberId: "zed", role: "member", by: "dave" }, "FORBIDDEN");
    expectRejected(s, { type: "chama.member.add", memberId: "zed", role: "admin", by: "dave" }, "FORBIDDEN");
    expectRejected(s, { type: "chama.member.role", memberId: "dave", role: "admin", by: "dave" }, "FORBIDDEN");
    expectRejected(s, { type: "chama.member.remove", memberId: "erin", by: "dave" }, "FORBIDDEN");
  });

  test("someone who is not a member cannot manage members: NOT_A_MEMBER", () => {
    expectRejected(chama(), { type: "chama.member.add", memberId: "zed", role: "admin", by: "mallory" }, "NOT_A_MEMBER");
    expectRejected(chama(), { type: "chama.member.remove", memberId: "dave", by: "mallory" }, "NOT_A_MEMBER");
  });

  test("inviting or adding someone already in the chama or already invited is refused with MEMBER_EXISTS", () => {
    const s = run(chama(), { type: "chama.member.invite", memberId: "zed", role: "member", by: "alice" });
    expectRejected(s, { type: "chama.member.invite", memberId: "dave", role: "member", by: "alice" }, "MEMBER_EXISTS");
    expectRejected(s, { type: "chama.member.add", memberId: "zed", role: "member", by: "bob" }, "MEMBER_EXISTS");
  });

  test("ids that name object prototype properties are never mistaken for members", () => {
    const s = chama();
    for (const id of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expectRejected(s, deposit(id, 1n), "MEMBER_NOT_FOUND");
      expectRejected(s, request("wd-p", id, 1n), "NOT_A_MEMBER");
      expectRejected(s, { type: "chama.member.accept", memberId: id }, "NOT_INVITED");
      expectRejected(s, approve("wd-p", id), "NOT_A_MEMBER");
      expectRejected(s, complete(id), "INVALID_TRANSITION");
    }
    const added = run(s, { type: "chama.member.add", memberId: "constructor", role: "member", by: "alice" }, deposit("constructor", 5n));
    expect(added.context.members["constructor"]).toMatchObject({ role: "member", contributed: 5n });
  });

  test("a role change is audited with the role before and after", () => {
    const { next, effects } = step(chama(), { type: "chama.member.role", memberId: "dave", role: "admin", by: "alice" });
    expect(next.context.members["dave"]?.role).toBe("admin");
    expect(single(effects, "chama.member.role_changed")).toMatchObject({ memberId: "dave", before: "member", after: "admin", by: "alice" });
    expect(single(effects, "chama.audit.recorded")).toMatchObject({ actor: "alice", target: "dave", before: { role: "member" }, after: { role: "admin" } });
  });

  test("giving a member the role they already have is refused with INVALID_TRANSITION", () => {
    expectRejected(chama(), { type: "chama.member.role", memberId: "dave", role: "member", by: "alice" }, "INVALID_TRANSITION");
  });

  test("the last admin can be neither removed nor demoted, nor leave: NOT_ENOUGH_ADMINS", () => {
    const lone = chama({ admins: ["alice"] });
    expectRejected(lone, { type: "chama.member.remove", memberId: "alice", by: "alice" }, "NOT_ENOUGH_ADMINS");
    expectRejected(lone, { type: "chama.member.role", memberId: "alice", role: "member", by: "alice" }, "NOT_ENOUGH_ADMINS");
  });

  test("admins cannot drop below the approvals a withdrawal needs: NOT_ENOUGH_ADMINS", () => {
    const s = chama({ rules: { approvalsRequired: 3 } });
    expectRejected(s, { type: "chama.member.remove", memberId: "carol", by: "alice" }, "NOT_ENOUGH_ADMINS");
    expectRejected(s, { type: "chama.member.role", memberId: "carol", role: "member", by: "alice" }, "NOT_ENOUGH_ADMINS");
    // Lower the rule first, then the admin can go.
    run(s, rules("alice", { approvalsRequired: 2 }), { type: "chama.member.remove", memberId: "carol", by: "alice" });
  });

  test("a member can leave on their own; an admin can remove anyone", () => {
    const left = step(chama(), { type: "chama.member.remove", memberId: "erin", by: "erin" });
    expect(left.next.context.members["erin"]).toBeUndefined();
    expect(single(left.effects, "chama.member.removed")).toMatchObject({ memberId: "erin", role: "member", by: "erin" });
    const removed = run(chama(), { type: "chama.member.remove", memberId: "bob", by: "alice" });
    expect(removed.context.members["bob"]).toBeUndefined();
  });

  test("removing someone who is only invited revokes the invitation", () => {
    const invited = run(chama(), { type: "chama.member.invite", memberId: "zed", role: "admin", by: "alice" });
    const { next, effects } = step(invited, { type: "chama.member.remove", memberId: "zed", by: "bob" });
    expect(next.context.invitations).toEqual({});
    expect(effects.map((e) => e.type)).toEqual(["chama.member.invitation_revoked", "chama.audit.recorded"]);
    expectRejected(next, { type: "chama.member.accept", memberId: "zed" }, "NOT_INVITED");
    expectRejected(next, { type: "chama.member.remove", memberId: "zed", by: "bob" }, "MEMBER_NOT_FOUND");
  });

  test("a removed member cannot request a withdrawal or act on the chama (NOT_A_MEMBER), nor be credited a deposit (MEMBER_NOT_FOUND)", () => {
    const removed = run(chama(), { type: "chama.member.remove", memberId: "dave", by: "alice" });
    expectRejected(removed, request("wd-1", "dave", 1n), "NOT_A_MEMBER");
    expectRejected(removed, deposit("dave", 1n), "MEMBER_NOT_FOUND");
    expectRejected(removed, { type: "chama.member.remove", memberId: "erin", by: "dave" }, "NOT_A_MEMBER");
  });

  test("a removed admin can no longer review: NOT_A_MEMBER", () => {
    const s = run(requested(), { type: "chama.member.remove", memberId: "bob", by: "alice" });
    expectRejected(s, approve("wd-1", "bob"), "NOT_A_MEMBER");
  });

  test("removing a member cancels their unstarted withdrawals and releases the holds; a payout in flight goes on", () => {
    const s = run(
      chama({ deposits: { dave: 1000n } }),
      request("wd-pending", "dave", 100n),
      request("wd-approved", "dave", 200n),
      approve("wd-approved", "bob"),
      request("wd-paying", "dave", 300n),
      approve("wd-paying", "bob"),
      proceed("wd-paying", "dave"),
      request("wd-erin", "erin", 50n),
    );
    expect(heldOf(s.context)).toBe(650n);
    const { next, effects } = step(s, { type: "chama.member.remove", memberId: "dave", by: "alice", reason: "left the group" });
    const cancelled = ofType(effects, "chama.withdrawal.changed");
    expect(cancelled.map((c) => [c.withdrawalId, c.from, c.status, c.by, c.reason])).toEqual([
      ["wd-pending", "pending_approval", "cancelled", "alice", "member removed"],
      ["wd-approved", "approved", "cancelled", "alice", "member removed"],
    ]);
    expect(Object.keys(next.context.withdrawals).sort()).toEqual(["wd-erin", "wd-paying"]);
    expect(heldOf(next.context)).toBe(350n);
    expect(single(effects, "chama.audit.recorded")).toMatchObject({
      action: "chama.member.remove",
      target: "dave",
      before: { role: "member", contributed: 1000n, available: 350n },
      after: { role: null, cancelled: ["wd-pending", "wd-approved"], available: 650n },
      note: "left the group",
    });

    // The payout in flight still completes, and is recorded against dave's former share.
    const done = run(next, complete("wd-paying"));
    expect(done.context.posted).toBe(700n);
    expect(done.context.former["dave"]).toEqual({ contributed: 1000n, withdrawn: 300n, leftAt: T0 });
  });

  test("a former member added back gets their contributions back", () => {
    const s = run(chama(), { type: "chama.member.remove", memberId: "dave", by: "alice" });
    expect(s.context.former["dave"]?.contributed).toBe(1000n);
    const back = run(s, { type: "chama.member.add", memberId: "dave", role: "member", by: "alice" });
    expect(back.context.members["dave"]?.contributed).toBe(1000n);
    expect(back.context.former).toEqual({});
  });

  test("approvals of an admin who is demoted or removed stop counting on undecided requests", () => {
    const s = run(chama({ rules: { approvalsRequired: 2 } }), request("wd-1", "dave", 100n), approve("wd-1", "bob"));
    expect(s.context.withdrawals["wd-1"]?.approvals).toEqual(["bob"]);
    const demoted = run(s, { type: "chama.member.role", memberId: "bob", role: "member", by: "alice" }, { type: "chama.member.role", memberId: "erin", role: "admin", by: "alice" });
    expect(demoted.context.withdrawals["wd-1"]?.approvals).toEqual([]);
    // carol alone is not enough any more; erin (now admin) makes two.
    const one = run(demoted, approve("wd-1", "carol"));
    expect(statusOf(one, "wd-1")).toBe("pending_approval");
    expect(statusOf(run(one, approve("wd-1", "erin")), "wd-1")).toBe("approved");
  });

  test("the member list is bounded: past the limit an add is LIMIT_EXCEEDED", () => {
    let s = chama({ admins: ["alice"], members: [], deposits: {} });
    const adds: ChamaCmd[] = [];
    for (let i = 1; i < CHAMA_LIMITS.membersMax; i++) adds.push({ type: "chama.member.add", memberId: `m-${i}`, role: "member", by: "alice" });
    s = run(s, ...adds);
    expect(Object.keys(s.context.members)).toHaveLength(CHAMA_LIMITS.membersMax);
    expectRejected(s, { type: "chama.member.add", memberId: "one-too-many", role: "member", by: "alice" }, "LIMIT_EXCEEDED");
  });
});

describe("rules", () => {
  test("an admin changes rules; the change is audited with the full rules before and after", () => {
    const { next, effects } = step(chama(), rules("bob", { approvalsRequired: 2, maxPerDay: 5000n }));
    const after = { ...DEFAULT_CHAMA_RULES, approvalsRequired: 2, maxPerDay: 5000n };
    expect(next.context.rules).toEqual(after);
    expect(single(effects, "chama.rules.changed")).toMatchObject({ before: DEFAULT_CHAMA_RULES, after, by: "bob" });
    expect(single(effects, "chama.audit.recorded")).toEqual({
      type: "chama.audit.recorded",
      chamaId: CHAMA,
      asset: "KES",
      at: T0,
      actor: "bob",
      action: "chama.rules.change",
      before: { ...DEFAULT_CHAMA_RULES },
      after,
    });
  });

  test("a member who is not an admin changing rules is refused with FORBIDDEN; a stranger with NOT_A_MEMBER", () => {
    expectRejected(chama(), rules("dave", { approvalsRequired: 1 }), "FORBIDDEN");
    expectRejected(chama(), rules("mallory", { approvalsRequired: 1 }), "NOT_A_MEMBER");
  });

  test("malformed rules are refused with VALIDATION_FAILED", () => {
    const s = chama();
    for (const patch of [
      {},
      { approvalsRequired: 0 },
      { approvalsRequired: 1.5 },
      { rejectionsToReject: 0 },
      { maxPerWithdrawal: 0n },
      { maxPerDay: -1n },
      { maxWithdrawalsPerWindow: 0 },
      { windowMs: 10 },
      { requestLifetimeMs: 365 * DAY },
      { maxPerDay: 10 as unknown as bigint },
      { bogus: 1 } as never,
    ]) {
      expectRejected(s, rules("alice", patch), "VALIDATION_FAILED");
    }
  });

  test("more approvals than there are admins is refused with NOT_ENOUGH_ADMINS", () => {
    expectRejected(chama(), rules("alice", { approvalsRequired: 4 }), "NOT_ENOUGH_ADMINS");
    run(chama(), rules("alice", { approvalsRequired: 3 }));
  });

  test("null lifts a limit", () => {
    const s = run(chama(), rules("alice", { maxPerDay: 10n }), rules("alice", { maxPerDay: null }));
    expect(s.context.rules.maxPerDay).toBeNull();
    run(s, request("wd-1", "dave", 500n));
  });
});

describe("deposits", () => {
  test("a deposit is attributed to the member and moves money from funding into the chama", () => {
    const { next, effects } = step(chama(), { ...deposit("erin", 250n, "j-erin"), reference: "mpesa-77" } as ChamaCmd);
    expect(next.context.posted).toBe(1250n);
    expect(next.context.members["erin"]?.contributed).toBe(250n);
    const deposited = single(effects, "chama.deposited");
    expect(deposited).toMatchObject({ memberId: "erin", amount: 250n, contributed: 250n });
    expect(deposited.journal).toEqual({
      id: "j-erin",
      kind: "chama_deposit",
      asset: "KES",
      reference: "mpesa-77",
      postings: [
        { account: SYSTEM_ACCOUNT.funding, amount: -250n },
        { account: CHAMA, amount: 250n },
      ],
    });
    expect(single(effects, "chama.audit.recorded")).toMatchObject({
      actor: "erin",
      target: "erin",
      before: { posted: 1000n, contributed: 0n },
      after: { posted: 1250n, contributed: 250n },
    });
  });

  test("contributions add up per member", () => {
    const s = run(chama({ deposits: {} }), deposit("dave", 10n), deposit("erin", 20n), deposit("dave", 30n));
    expect(s.context.members["dave"]?.contributed).toBe(40n);
    expect(s.context.members["erin"]?.contributed).toBe(20n);
    expect(s.context.posted).toBe(60n);
  });

  test("a deposit for someone who is not a member is MEMBER_NOT_FOUND naming them, not a refusal of the caller", () => {
    const { effects } = step(chama(), deposit("mallory", 10n));
    expect(effects).toEqual([{ type: "rejected", code: "MEMBER_NOT_FOUND", detail: "no member mallory in this chama" }]);
  });

  test("a role change or a removal naming someone the chama does not have is MEMBER_NOT_FOUND naming them", () => {
    const role = step(chama(), { type: "chama.member.role", memberId: "zed", role: "admin", by: "alice" }).effects;
    expect(role).toEqual([{ type: "rejected", code: "MEMBER_NOT_FOUND", detail: "no member zed in this chama" }]);
    const remove = step(chama(), { type: "chama.member.remove", memberId: "zed", by: "alice" }).effects;
    expect(remove).toEqual([{ type: "rejected", code: "MEMBER_NOT_FOUND", detail: "no member zed in this chama" }]);
  });

  test("a member id that looks like an account number is masked in the refusal that names it", () => {
    const { effects } = step(chama(), deposit("254712345678", 10n));
    expect(effects).toEqual([{ type: "rejected", code: "MEMBER_NOT_FOUND", detail: "no member ****5678 in this chama" }]);
  });

  test("a non-positive deposit is VALIDATION_FAILED", () => {
    expectRejected(chama(), deposit("dave", 0n), "VALIDATION_FAILED");
    expectRejected(chama(), deposit("dave", -5n), "VALIDATION_FAILED");
  });
});

describe("withdrawal requests and holds", () => {
  test("a request waits for approval and holds its amount: posted stays, available drops", () => {
    const { next, effects } = step(chama(), request("wd-1", "dave", 300n));
    expect(next.context.posted).toBe(1000n);
    expect(heldOf(next.context)).toBe(300n);
    expect(availableOf(next.context)).toBe(700n);
    expect(next.context.withdrawals["wd-1"]).toEqual({
      memberId: "dave",
      amount: 300n,
      status: "pending_approval",
      approvals: [],
      rejections: [],
      requestedAt: T0,
      expiresAt: later(DEFAULT_CHAMA_RULES.requestLifetimeMs),
      destination: bank,
    });
    expect(single(effects, "chama.withdrawal.changed")).toEqual({
      type: "chama.withdrawal.changed",
      chamaId: CHAMA,
      asset: "KES",
      at: T0,
      withdrawalId: "wd-1",
      memberId: "dave",
      amount: 300n,
      from: "requested",
      status: "pending_approval",
      by: "dave",
      approvals: [],
      rejections: [],
      destination: bank,
    });
    const audited = single(effects, "chama.audit.recorded");
    expect(audited).toMatchObject({ actor: "dave", action: "chama.withdrawal.request", target: "wd-1", before: { available: 1000n }, after: { available: 700n } });
    expect(show(audited)).not.toContain(bank.sealed.ct);
  });

  test("a request above the available balance is refused with INSUFFICIENT_FUNDS", () => {
    expectRejected(chama(), request("wd-1", "dave", 1001n), "INSUFFICIENT_FUNDS");
    expectRejected(requested(), request("wd-2", "erin", 701n), "INSUFFICIENT_FUNDS");
    run(requested(), request("wd-2", "erin", 700n));
  });

  test("requests racing past the balance: the sum held never exceeds posted and what is paid never exceeds it", () => {
    let s = chama({ deposits: { dave: 600n, erin: 400n } });
    const requesters = ["dave", "erin", "alice", "bob", "carol"];
    let accepted: string[] = [];
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      const id = `wd-${i}`;
      const { next, effects } = step(s, request(id, requesters[i % requesters.length]!, 150n));
      if (effects[0]?.type === "rejected") {
        expect(effects).toEqual([{ type: "rejected", code: "INSUFFICIENT_FUNDS", detail: expect.any(String) }]);
        refused++;
      } else accepted.push(id);
      s = next;
      expect(heldOf(s.context) <= s.context.posted).toBe(true);
    }
    expect(accepted).toHaveLength(6);
    expect(refused).toBe(14);
    expect(heldOf(s.context)).toBe(900n);

    // Every accepted one is approved (by an admin who is not its requester), continued and paid.
    let paid = 0n;
    for (const id of accepted) {
      const requester = s.context.withdrawals[id]!.memberId;
      const reviewer = ["alice", "bob"].find((a) => a !== requester)!;
      s = run(s, approve(id, reviewer), proceed(id, requester));
      const done = step(s, complete(id));
      paid += single(done.effects, "chama.withdrawal.changed").amount;
      s = done.next;
    }
    expect(paid).toBe(900n);
    expect(s.context.posted).toBe(100n);
    expect(heldOf(s.context)).toBe(0n);
    expectRejected(s, request("wd-late", "dave", 101n), "INSUFFICIENT_FUNDS");
  });

  test("an id already used is refused with WITHDRAWAL_EXISTS, open or ended", () => {
    expectRejected(requested(), request("wd-1", "erin", 1n), "WITHDRAWAL_EXISTS");
    expectRejected(run(requested(), cancel("wd-1", "dave")), request("wd-1", "erin", 1n), "WITHDRAWAL_EXISTS");
  });

  test("a non-positive amount is refused with VALIDATION_FAILED", () => {
    expectRejected(chama(), request("wd-1", "dave", 0n), "VALIDATION_FAILED");
  });

  test("a request nobody but its requester could approve is refused with NOT_ENOUGH_ADMINS", () => {
    // One admin: their own request can never be approved; a member's can.
    const lone = chama({ admins: ["alice"] });
    expectRejected(lone, request("wd-1", "alice", 10n), "NOT_ENOUGH_ADMINS");
    run(lone, request("wd-1", "dave", 10n));
    // Three admins, three approvals required: no admin can request, members can.
    const all = chama({ rules: { approvalsRequired: 3 } });
    expectRejected(all, request("wd-1", "bob", 10n), "NOT_ENOUGH_ADMINS");
    run(all, request("wd-1", "dave", 10n));
  });

  test("the number of open withdrawals is bounded: past it a request is LIMIT_EXCEEDED", () => {
    const requests: ChamaCmd[] = [];
    for (let i = 0; i < CHAMA_LIMITS.openWithdrawalsMax; i++) requests.push(request(`wd-${i}`, "dave", 1n));
    const full = run(chama(), ...requests);
    expectRejected(full, request("wd-more", "dave", 1n), "LIMIT_EXCEEDED");
  });
});

describe("reviews", () => {
  test("one approval is enough by default: the request becomes approved", () => {
    const { next, effects } = step(requested(), { ...approve("wd-1", "bob"), note: "fine" } as ChamaCmd);
    expect(statusOf(next, "wd-1")).toBe("approved");
    expect(effects.map((e) => e.type)).toEqual(["chama.withdrawal.reviewed", "chama.withdrawal.changed", "chama.audit.recorded"]);
    expect(single(effects, "chama.withdrawal.reviewed")).toMatchObject({ reviewerId: "bob", decision: "approve", status: "approved", approvals: ["bob"], note: "fine" });
    expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ from: "pending_approval", status: "approved", by: "bob", approvals: ["bob"] });
    expect(availableOf(next.context)).toBe(700n); // still held
  });

  test("two admins approving with two required: the right count and exactly one transition to approved", () => {
    const s = run(chama({ rules: { approvalsRequired: 2 } }), request("wd-1", "dave", 300n));
    const first = step(s, approve("wd-1", "bob"));
    expect(statusOf(first.next, "wd-1")).toBe("pending_approval");
    expect(first.next.context.withdrawals["wd-1"]?.approvals).toEqual(["bob"]);
    expect(first.effects.map((e) => e.type)).toEqual(["chama.withdrawal.reviewed", "chama.audit.recorded"]);

    const second = step(first.next, approve("wd-1", "carol"));
    expect(statusOf(second.next, "wd-1")).toBe("approved");
    expect(second.next.context.withdrawals["wd-1"]?.approvals).toEqual(["bob", "carol"]);
    const transitions = [...first.effects, ...second.effects].filter((e) => e.type === "chama.withdrawal.changed" && e.status === "approved");
    expect(transitions).toHaveLength(1);

    // A third admin coming late finds it decided.
    expectRejected(second.next, approve("wd-1", "alice"), "INVALID_TRANSITION");
  });

  test("the same admin approving twice counts once: INVALID_TRANSITION", () => {
    const s = run(chama({ rules: { approvalsRequired: 2 } }), request("wd-1", "dave", 300n), approve("wd-1", "bob"));
    expectRejected(s, approve("wd-1", "bob"), "INVALID_TRANSITION");
    expectRejected(s, rejectBy("wd-1", "bob"), "INVALID_TRANSITION");
    expect(s.context.withdrawals["wd-1"]?.approvals).toEqual(["bob"]);
  });

  test("the requester approving their own request is refused with FORBIDDEN", () => {
    const s = run(chama({ rules: { approvalsRequired: 2 } }), request("wd-1", "alice", 300n));
    expectRejected(s, approve("wd-1", "alice"), "FORBIDDEN");
    expectRejected(s, rejectBy("wd-1", "alice"), "FORBIDDEN");
    // The other two admins can.
    expect(statusOf(run(s, approve("wd-1", "bob"), approve("wd-1", "carol")), "wd-1")).toBe("approved");
  });

  test("a member who is not an admin reviewing is refused with FORBIDDEN; a stranger with NOT_A_MEMBER", () => {
    expectRejected(requested(), approve("wd-1", "erin"), "FORBIDDEN");
    expectRejected(requested(), rejectBy("wd-1", "erin"), "FORBIDDEN");
    expectRejected(requested(), approve("wd-1", "mallory"), "NOT_A_MEMBER");
  });

  test("one rejection rejects by default and releases the hold", () => {
    const { next, effects } = step(requested(), rejectBy("wd-1", "carol", "not agreed in the meeting"));
    expect(next.context.withdrawals).toEqual({});
    expect(availableOf(next.context)).toBe(1000n);
    expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ from: "pending_approval", status: "rejected", by: "carol", rejections: ["carol"], note: "not agreed in the meeting" });
    expect(single(effects, "chama.audit.recorded")).toMatchObject({
      action: "chama.withdrawal.review",
      before: { status: "pending_approval", available: 700n },
      after: { status: "rejected", rejections: ["carol"], available: 1000n },
      note: "not agreed in the meeting",
    });
  });

  test("with two rejections required, one rejection keeps the request pending and approvals can still win", () => {
    const s = run(chama({ rules: { rejectionsToReject: 2 } }), request("wd-1", "dave", 300n), rejectBy("wd-1", "carol"));
    expect(statusOf(s, "wd-1")).toBe("pending_approval");
    expect(s.context.withdrawals["wd-1"]?.rejections).toEqual(["carol"]);
    expect(statusOf(run(s, approve("wd-1", "bob")), "wd-1")).toBe("approved");
    expect(run(s, rejectBy("wd-1", "alice")).context.withdrawals["wd-1"]).toBeUndefined();
  });

  test("reject after approve is refused with INVALID_TRANSITION, by the approver and by anyone else", () => {
    const s = approved();
    expectRejected(s, rejectBy("wd-1", "bob"), "INVALID_TRANSITION");
    expectRejected(s, rejectBy("wd-1", "carol"), "INVALID_TRANSITION");
  });

  test("approve after reject is refused with INVALID_TRANSITION, by the rejecter and by anyone else", () => {
    const s = run(requested(), rejectBy("wd-1", "carol"));
    expectRejected(s, approve("wd-1", "carol"), "INVALID_TRANSITION");
    expectRejected(s, approve("wd-1", "bob"), "INVALID_TRANSITION");
    const { effects } = step(s, approve("wd-1", "bob"));
    expect(effects[0]).toMatchObject({ detail: expect.stringContaining("already rejected") });
  });

  test("reviewing a withdrawal this chama does not have is refused with INVALID_TRANSITION", () => {
    expectRejected(requested(), approve("wd-unknown", "bob"), "INVALID_TRANSITION");
  });

  test("rule changes apply to later reviews, not retroactively", () => {
    const s = run(chama({ rules: { approvalsRequired: 3 } }), request("wd-1", "dave", 300n), approve("wd-1", "bob"), approve("wd-1", "carol"));
    const lowered = run(s, rules("alice", { approvalsRequired: 2 }));
    expect(statusOf(lowered, "wd-1")).toBe("pending_approval");
    expect(statusOf(run(lowered, approve("wd-1", "alice")), "wd-1")).toBe("approved");
  });
});

describe("expiry", () => {
  const lifetime = DEFAULT_CHAMA_RULES.requestLifetimeMs;

  test("an expired request cannot be approved, before or after the expiry is recorded", () => {
    const s = requested();
    // At the exact end of its life the request is over, even before anyone expires it.
    expectRejected(s, approve("wd-1", "bob", later(lifetime)), "INVALID_TRANSITION");
    run(s, approve("wd-1", "bob", later(lifetime - 1)));

    const { next, effects } = step(s, expire("wd-1", later(lifetime)));
    expect(next.context.withdrawals).toEqual({});
    expect(availableOf(next.context)).toBe(1000n);
    expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ from: "pending_approval", status: "expired", by: SYSTEM_ACTOR });
    expect(single(effects, "chama.audit.recorded")).toMatchObject({ actor: SYSTEM_ACTOR, action: "chama.withdrawal.expire" });
    expectRejected(next, approve("wd-1", "bob", later(lifetime)), "INVALID_TRANSITION");
    expectRejected(next, approve("wd-1", "bob", later(1)), "INVALID_TRANSITION");
  });

  test("a request cannot be expired before its time: INVALID_TRANSITION", () => {
    expectRejected(requested(), expire("wd-1", later(lifetime - 1)), "INVALID_TRANSITION");
  });

  test("an approved request not continued in time cannot be continued and expires", () => {
    const s = approved();
    expectRejected(s, proceed("wd-1", "dave", later(lifetime)), "INVALID_TRANSITION");
    expect(run(s, expire("wd-1", later(lifetime))).context.withdrawals).toEqual({});
  });

  test("a payout in flight never expires", () => {
    expectRejected(processing(), expire("wd-1", later(10 * lifetime)), "INVALID_TRANSITION");
  });

  test("the host can ask which requests are overdue and when the next one will be", () => {
    const s = run(chama(), request("wd-1", "dave", 1n), request("wd-2", "dave", 1n, later(HOUR_MS)), request("wd-3", "erin", 1n));
    const paying = run(s, approve("wd-3", "bob"), proceed("wd-3", "erin"));
    expect(nextExpiryAt(paying.context)).toBe(later(lifetime));
    expect(overdueWithdrawalIds(paying.context, later(lifetime - 1))).toEqual([]);
    expect(overdueWithdrawalIds(paying.context, later(lifetime))).toEqual(["wd-1"]);
    expect(overdueWithdrawalIds(paying.context, later(lifetime + HOUR_MS))).toEqual(["wd-1", "wd-2"]);
    expect(nextExpiryAt(chama().context)).toBeNull();
  });

  test("the lifetime is fixed when the request is made", () => {
    const s = run(requested(), rules("alice", { requestLifetimeMs: HOUR_MS }));
    expect(s.context.withdrawals["wd-1"]?.expiresAt).toBe(later(lifetime));
    expect(run(s, request("wd-2", "erin", 1n)).context.withdrawals["wd-2"]?.expiresAt).toBe(later(HOUR_MS));
  });
});

describe("continuing and paying out", () => {
  test("the requester continues an approved withdrawal: it is processing, still held, and the effect says where to pay", () => {
    const { next, effects } = step(approved(), proceed("wd-1", "dave"));
    expect(statusOf(next, "wd-1")).toBe("processing");
    expect(availableOf(next.context)).toBe(700n);
    expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ from: "approved", status: "processing", by: "dave", amount: 300n, destination: bank });
    expect(show(single(effects, "chama.audit.recorded"))).not.toContain(bank.sealed.ct);
  });

  test("continue called five times gives one payout; the other four are INVALID_TRANSITION", () => {
    let s = approved();
    const payouts = [];
    const refusals = [];
    for (let i = 0; i < 5; i++) {
      const { next, effects } = step(s, proceed("wd-1", i % 2 ? "alice" : "dave"));
      payouts.push(...ofType(effects, "chama.withdrawal.changed").filter((e) => e.status === "processing"));
      refusals.push(...ofType(effects, "rejected").filter((e) => e.code === "INVALID_TRANSITION"));
      s = next;
    }
    expect(payouts).toHaveLength(1);
    expect(refusals).toHaveLength(4);
    expect(heldOf(s.context)).toBe(300n);
  });

  test("an admin may continue a member's approved withdrawal; another member may not: FORBIDDEN", () => {
    expectRejected(approved(), proceed("wd-1", "erin"), "FORBIDDEN");
    expectRejected(approved(), proceed("wd-1", "mallory"), "NOT_A_MEMBER");
    expect(statusOf(run(approved(), proceed("wd-1", "carol")), "wd-1")).toBe("processing");
  });

  test("continuing before approval is refused with INVALID_TRANSITION", () => {
    expectRejected(requested(), proceed("wd-1", "dave"), "INVALID_TRANSITION");
  });

  test("a completed payout moves the money from the chama to the withdrawals account", () => {
    const { next, effects } = step(processing(), complete("wd-1"));
    expect(next.context.posted).toBe(700n);
    expect(heldOf(next.context)).toBe(0n);
    expect(availableOf(next.context)).toBe(700n);
    expect(next.context.members["dave"]).toMatchObject({ contributed: 1000n, withdrawn: 300n });
    const changed = single(effects, "chama.withdrawal.changed");
    expect(changed).toMatchObject({ from: "processing", status: "completed", by: SYSTEM_ACTOR });
    expect(changed.journal).toEqual({
      id: "j-wd-1",
      kind: "chama_withdrawal",
      asset: "KES",
      postings: [
        { account: CHAMA, amount: -300n },
        { account: SYSTEM_ACCOUNT.withdrawals, amount: 300n },
      ],
    });
    expect(single(effects, "chama.audit.recorded")).toMatchObject({ before: { status: "processing", posted: 1000n }, after: { status: "completed", posted: 700n } });
  });

  test("a failed payout releases the hold, restores the balance and the audit shows it", () => {
    const s = processing();
    expect(availableOf(s.context)).toBe(700n);
    const { next, effects } = step(s, fail("wd-1", "bank account closed"));
    expect(next.context.withdrawals).toEqual({});
    expect(next.context.posted).toBe(1000n);
    expect(availableOf(next.context)).toBe(1000n);
    expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ from: "processing", status: "failed", reason: "bank account closed" });
    expect(ofType(effects, "chama.withdrawal.changed")[0]?.journal).toBeUndefined();
    expect(single(effects, "chama.audit.recorded")).toEqual({
      type: "chama.audit.recorded",
      chamaId: CHAMA,
      asset: "KES",
      at: T0,
      actor: SYSTEM_ACTOR,
      action: "chama.withdrawal.fail",
      target: "wd-1",
      before: { status: "processing", posted: 1000n, available: 700n },
      after: { status: "failed", posted: 1000n, available: 1000n },
      note: "bank account closed",
    });
    // The released money can be requested again.
    run(next, request("wd-2", "dave", 1000n));
  });

  test("complete and fail only apply to a payout in flight, and only once", () => {
    for (const s of [requested(), approved()]) {
      expectRejected(s, complete("wd-1"), "INVALID_TRANSITION");
      expectRejected(s, fail("wd-1"), "INVALID_TRANSITION");
    }
    const done = run(processing(), complete("wd-1"));
    expectRejected(done, complete("wd-1"), "INVALID_TRANSITION");
    expectRejected(done, fail("wd-1"), "INVALID_TRANSITION");
    const failed = run(processing(), fail("wd-1"));
    expectRejected(failed, complete("wd-1"), "INVALID_TRANSITION");
    expect(failed.context.posted).toBe(1000n);
  });
});

describe("cancelling", () => {
  test("the requester or an admin cancels an unstarted withdrawal and the hold is released", () => {
    for (const s of [requested(), approved(), run(requested(), park("wd-1", "alice"))]) {
      for (const by of ["dave", "alice"]) {
        const { next, effects } = step(s, cancel("wd-1", by));
        expect(next.context.withdrawals).toEqual({});
        expect(availableOf(next.context)).toBe(1000n);
        expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ status: "cancelled", by });
      }
    }
  });

  test("another member cannot cancel: FORBIDDEN", () => {
    expectRejected(requested(), cancel("wd-1", "erin"), "FORBIDDEN");
  });

  test("a payout in flight cannot be cancelled: INVALID_TRANSITION", () => {
    expectRejected(processing(), cancel("wd-1", "dave"), "INVALID_TRANSITION");
    expectRejected(processing(), cancel("wd-1", "alice"), "INVALID_TRANSITION");
  });
});

describe("manual review", () => {
  test("an admin parks a pending request; approvals start again and admins then approve it", () => {
    const s = run(chama({ rules: { approvalsRequired: 2 } }), request("wd-1", "dave", 300n), approve("wd-1", "bob"));
    const { next, effects } = step(s, park("wd-1", "carol"));
    expect(statusOf(next, "wd-1")).toBe("manual_review");
    expect(next.context.withdrawals["wd-1"]?.approvals).toEqual([]);
    expect(single(effects, "chama.withdrawal.changed")).toMatchObject({ from: "pending_approval", status: "manual_review", by: "carol", note: "unusual destination" });
    expect(heldOf(next.context)).toBe(300n);

    const one = run(next, approve("wd-1", "bob"));
    expect(statusOf(one, "wd-1")).toBe("manual_review");
    expect(statusOf(run(one, approve("wd-1", "carol")), "wd-1")).toBe("approved");
  });

  test("an admin parks an approved request so it cannot be continued until reviewed again, then rejects it", () => {
    const parked = run(approved(), park("wd-1", "carol"));
    expectRejected(parked, proceed("wd-1", "dave"), "INVALID_TRANSITION");
    const rejected = run(parked, rejectBy("wd-1", "carol"));
    expect(rejected.context.withdrawals).toEqual({});
    expect(availableOf(rejected.context)).toBe(1000n);
  });

  test("only admins park, and a payout in flight cannot be parked", () => {
    expectRejected(requested(), park("wd-1", "erin"), "FORBIDDEN");
    expectRejected(processing(), park("wd-1", "alice"), "INVALID_TRANSITION");
    expectRejected(run(requested(), park("wd-1", "alice")), park("wd-1", "bob"), "INVALID_TRANSITION");
  });
});

describe("limits", () => {
  test("per-withdrawal maximum: at it allowed, one unit over LIMIT_EXCEEDED", () => {
    const s = chama({ rules: { maxPerWithdrawal: 400n } });
    run(s, request("wd-1", "dave", 400n));
    expectRejected(s, request("wd-1", "dave", 401n), "LIMIT_EXCEEDED");
  });

  test("daily maximum at its exact boundary: at it allowed, one unit over LIMIT_EXCEEDED", () => {
    const s = run(chama({ deposits: { dave: 5000n }, rules: { maxPerDay: 1000n } }), request("wd-1", "dave", 600n));
    expectRejected(s, request("wd-2", "erin", 401n, later(HOUR_MS)), "LIMIT_EXCEEDED");
    const atLimit = run(s, request("wd-2", "erin", 400n, later(HOUR_MS)));
    expect(heldOf(atLimit.context)).toBe(1000n);
    expectRejected(atLimit, request("wd-3", "erin", 1n, later(2 * HOUR_MS)), "LIMIT_EXCEEDED");
  });

  test("the daily maximum is a rolling 24 hours", () => {
    const s = run(chama({ deposits: { dave: 5000n }, rules: { maxPerDay: 1000n } }), request("wd-1", "dave", 1000n));
    expectRejected(s, request("wd-2", "dave", 1n, later(DAY - 1)), "LIMIT_EXCEEDED");
    run(s, request("wd-2", "dave", 1000n, later(DAY)));
  });

  test("completed withdrawals count toward the daily maximum; released ones do not", () => {
    const base = chama({ deposits: { dave: 5000n }, rules: { maxPerDay: 1000n } });
    const paid = run(base, request("wd-1", "dave", 1000n), approve("wd-1", "bob"), proceed("wd-1", "dave"), complete("wd-1"));
    expectRejected(paid, request("wd-2", "dave", 1n), "LIMIT_EXCEEDED");
    for (const release of [rejectBy("wd-1", "bob"), cancel("wd-1", "dave")]) {
      const released = run(base, request("wd-1", "dave", 1000n), release);
      run(released, request("wd-2", "dave", 1000n));
    }
    const failed = run(base, request("wd-1", "dave", 1000n), approve("wd-1", "bob"), proceed("wd-1", "dave"), fail("wd-1"));
    run(failed, request("wd-2", "dave", 1000n));
  });

  test("maximum withdrawals per window: the next one inside the window is LIMIT_EXCEEDED, the one after it is allowed", () => {
    const s = run(
      chama({ rules: { maxWithdrawalsPerWindow: 2, windowMs: HOUR_MS } }),
      request("wd-1", "dave", 1n),
      request("wd-2", "erin", 1n, later(HOUR_MS / 2)),
    );
    expectRejected(s, request("wd-3", "dave", 1n, later(HOUR_MS - 1)), "LIMIT_EXCEEDED");
    const next = run(s, request("wd-3", "dave", 1n, later(HOUR_MS)));
    expectRejected(next, request("wd-4", "dave", 1n, later(HOUR_MS)), "LIMIT_EXCEEDED");
  });

  test("what the limits remember is pruned by time", () => {
    let s = chama({ deposits: { dave: 100_000n } });
    for (let i = 0; i < 50; i++) {
      s = run(s, request(`wd-${i}`, "dave", 1n, later(i * HOUR_MS)), approve(`wd-${i}`, "bob", later(i * HOUR_MS)), proceed(`wd-${i}`, "dave", later(i * HOUR_MS)), complete(`wd-${i}`));
    }
    expect(s.context.recent.length).toBeLessThanOrEqual(25);
    expect(s.context.ended.length).toBeLessThanOrEqual(CHAMA_LIMITS.endedMax);
  });
});

describe("freezing and closing", () => {
  test("a frozen chama refuses deposits, requests and continues, but in-flight payouts and reviews go on", () => {
    const s = run(processing(), request("wd-2", "erin", 100n), { type: "chama.freeze", by: "alice" });
    expect(s.value).toBe("frozen");
    expectRejected(s, deposit("dave", 1n), "CHAMA_FROZEN");
    expectRejected(s, request("wd-3", "dave", 1n), "CHAMA_FROZEN");
    const approvedWhileFrozen = run(s, approve("wd-2", "bob"));
    expectRejected(approvedWhileFrozen, proceed("wd-2", "erin"), "CHAMA_FROZEN");
    expect(run(s, complete("wd-1")).context.posted).toBe(700n);
    const thawed = run(approvedWhileFrozen, { type: "chama.unfreeze", by: "bob" });
    expect(thawed.value).toBe("active");
    run(thawed, proceed("wd-2", "erin"));
  });

  test("only admins freeze and unfreeze, and both are audited", () => {
    expectRejected(chama(), { type: "chama.freeze", by: "dave" }, "FORBIDDEN");
    const { effects } = step(chama(), { type: "chama.freeze", by: "bob" });
    expect(effects.map((e) => e.type)).toEqual(["chama.frozen", "chama.audit.recorded"]);
    expect(single(effects, "chama.audit.recorded")).toMatchObject({ actor: "bob", before: { state: "active" }, after: { state: "frozen" } });
    const frozen = run(chama(), { type: "chama.freeze", by: "alice" });
    expectRejected(frozen, { type: "chama.unfreeze", by: "dave" }, "FORBIDDEN");
    expectRejected(frozen, { type: "chama.freeze", by: "alice" }, "INVALID_TRANSITION");
    expectRejected(chama(), { type: "chama.unfreeze", by: "alice" }, "INVALID_TRANSITION");
  });

  test("a chama with money or open withdrawals cannot be closed: CHAMA_NOT_EMPTY", () => {
    expectRejected(chama(), { type: "chama.close", by: "alice" }, "CHAMA_NOT_EMPTY");
    const drained = run(chama(), request("wd-1", "dave", 1000n), approve("wd-1", "bob"), proceed("wd-1", "dave"));
    expect(drained.context.posted).toBe(1000n);
    expectRejected(drained, { type: "chama.close", by: "alice" }, "CHAMA_NOT_EMPTY");
  });

  test("an empty chama closes, and then refuses everything", () => {
    const empty = run(chama(), request("wd-1", "dave", 1000n), approve("wd-1", "bob"), proceed("wd-1", "dave"), complete("wd-1"));
    expectRejected(empty, { type: "chama.close", by: "dave" }, "FORBIDDEN");
    const { next, effects } = step(empty, { type: "chama.close", by: "alice" });
    expect(next.value).toBe("closed");
    expect(effects.map((e) => e.type)).toEqual(["chama.closed", "chama.audit.recorded"]);
    for (const command of EVERY_COMMAND) expectRejected(next, command, "CHAMA_CLOSED");
    expectRejected(next, { type: "chama.close", by: "alice" }, "INVALID_TRANSITION");
  });
});

describe("audit", () => {
  test("every accepted command emits exactly one audit record, last, naming who did what and when", () => {
    const commands: ChamaCmd[] = [
      { type: "chama.open", chamaId: CHAMA, name: "Umoja", asset: "KES", createdBy: "alice", at: later(0) },
      { type: "chama.member.add", memberId: "bob", role: "admin", by: "alice", at: later(1) },
      { type: "chama.member.invite", memberId: "dave", role: "member", by: "bob", at: later(2) },
      { type: "chama.member.accept", memberId: "dave", at: later(3) },
      { type: "chama.member.role", memberId: "dave", role: "admin", by: "alice", at: later(4) },
      rules("bob", { rejectionsToReject: 1 }),
      { ...deposit("dave", 500n), at: later(5) },
      request("wd-1", "dave", 100n, later(6)),
      approve("wd-1", "bob", later(7)),
      proceed("wd-1", "dave", later(8)),
      complete("wd-1"),
      request("wd-2", "dave", 100n, later(9)),
      park("wd-2", "alice"),
      cancel("wd-2", "dave"),
      request("wd-3", "dave", 100n, later(10)),
      expire("wd-3", later(30 * DAY)),
      { type: "chama.freeze", by: "alice" },
      { type: "chama.unfreeze", by: "alice" },
      { type: "chama.member.remove", memberId: "dave", by: "dave" },
    ];
    let s = unopened();
    for (const command of commands) {
      const { next, effects } = step(s, command);
      const audits = ofType(effects, "chama.audit.recorded");
      expect(audits).toHaveLength(1);
      expect(effects.at(-1)).toBe(audits[0]!);
      expect(audits[0]).toMatchObject({ chamaId: CHAMA, action: command.type, at: command.at ?? T0, actor: expect.any(String) });
      s = next;
    }
  });

  test("a refused command leaves no audit record", () => {
    const { effects } = step(chama(), rules("dave", { approvalsRequired: 2 }));
    expect(ofType(effects, "chama.audit.recorded")).toEqual([]);
  });
});

test("a chama persisted as JSON and restored behaves exactly like the live one", () => {
  const live = run(
    chama({ rules: { approvalsRequired: 2, maxPerDay: 2000n } }),
    request("wd-1", "dave", 300n),
    approve("wd-1", "bob"),
    request("wd-2", "erin", 200n),
    { type: "chama.member.invite", memberId: "zed", role: "member", by: "alice" },
    { type: "chama.member.remove", memberId: "erin", by: "alice" },
  );
  const persisted = decode<{ value: string; context: ChamaContext }>(encode({ value: live.value, context: live.context }));
  const restored = chamaMachine.resolveState(persisted);
  expect(restored.context).toEqual(live.context);
  const commands: ChamaCmd[] = [approve("wd-1", "carol"), proceed("wd-1", "dave"), { type: "chama.member.accept", memberId: "zed" }, complete("wd-1"), request("wd-3", "dave", 1701n)];
  let a = live;
  let b = restored;
  for (const command of commands) {
    const x = step(a, command);
    const y = step(b, command);
    expect(y.effects).toEqual(x.effects);
    expect(y.next.value).toEqual(x.next.value);
    expect(y.next.context).toEqual(x.next.context);
    a = x.next;
    b = y.next;
  }
});

describe("invariants under random commands", () => {
  /** A small deterministic PRNG (mulberry32), so a failure replays exactly. */
  function prng(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const PEOPLE = ["alice", "bob", "carol", "dave", "erin", "mallory"];
  /** Outcomes over every seed, to check the walks went down the money paths and not only into refusals. */
  const seen = new Map<string, number>();

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    test(`seed ${seed}: money is never held or paid beyond what was deposited, and refusals change nothing`, () => {
      const random = prng(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      /** Weighted choice: [weight, make] pairs. */
      const choose = <T>(options: [number, () => T][]): T => {
        let r = random() * options.reduce((sum, [w]) => sum + w, 0);
        for (const [w, make] of options) if ((r -= w) < 0) return make();
        return options.at(-1)![1]();
      };

      let s = chama({ deposits: { dave: 500n }, rules: { approvalsRequired: 2, maxPerDay: 3000n, maxWithdrawalsPerWindow: 20, windowMs: HOUR_MS, requestLifetimeMs: 2 * HOUR_MS } });
      let clockMs = 0;
      let ids = 0;
      let deposited = 500n;
      let completed = 0n;
      let chamaNet = 500n; // the ledger's view of the chama account: the sum of its postings
      const outcomes = new Map<string, number>();

      for (let i = 0; i < 1200; i++) {
        clockMs += Math.floor(random() * 5 * 60_000);
        const at = later(clockMs);
        // Mostly people who are in the chama, sometimes anyone; mostly open withdrawals, sometimes not.
        const members = Object.keys(s.context.members);
        const admins = members.filter((m) => s.context.members[m]!.role === "admin");
        const who = () => (random() < 0.85 ? pick(members) : pick(PEOPLE));
        const admin = () => (random() < 0.85 && admins.length ? pick(admins) : who());
        const open = Object.keys(s.context.withdrawals);
        const w = () => (random() < 0.85 && open.length ? pick(open) : pick([...s.context.ended.map((e) => e.withdrawalId), "wd-nope"]));
        const requesterOr = (id: string) => (random() < 0.7 ? (s.context.withdrawals[id]?.memberId ?? who()) : admin());

        const command = choose<ChamaCmd>([
          [4, () => ({ type: "chama.deposit", journalId: `j-${i}`, memberId: who(), amount: BigInt(1 + Math.floor(random() * 300)), at })],
          [10, () => request(`wd-${ids++}`, who(), BigInt(1 + Math.floor(random() * 800)), at)],
          [12, () => approve(w(), admin(), at)],
          [3, () => ({ ...rejectBy(w(), admin()), at })],
          [8, () => { const id = w(); return proceed(id, requesterOr(id), at); }],
          [6, () => ({ ...complete(w()), at })],
          [2, () => ({ ...fail(w()), at })],
          [2, () => { const id = w(); return { ...cancel(id, requesterOr(id)), at }; }],
          [1, () => ({ ...park(w(), admin()), at })],
          [3, () => { const overdue = overdueWithdrawalIds(s.context, at); return expire(overdue.length && random() < 0.8 ? pick(overdue) : w(), at); }],
          [1, () => ({ type: "chama.member.role", memberId: pick(PEOPLE), role: pick(["admin", "member"] as const), by: admin(), at })],
          [1, () => ({ type: "chama.member.remove", memberId: pick(PEOPLE), by: who(), at })],
          [2, () => ({ type: "chama.member.add", memberId: pick(PEOPLE), role: pick(["admin", "member"] as const), by: admin(), at })],
          [1, () => ({ ...rules(admin(), { approvalsRequired: pick([1, 2, 3]) }), at })],
        ]);

        const before = s;
        const { next, effects } = step(s, command);
        expect(effects.length).toBeGreaterThan(0);
        const refusal = ofType(effects, "rejected")[0];
        const outcome = `${command.type} ${refusal ? refusal.code : "ok"}`;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
        if (refusal) {
          expect(effects).toHaveLength(1);
          expect(next.value).toEqual(before.value);
          expect(next.context).toEqual(before.context);
        } else {
          expect(ofType(effects, "chama.audit.recorded")).toHaveLength(1);
          for (const e of effects) {
            if (e.type === "chama.deposited") deposited += e.amount;
            if (e.type === "chama.withdrawal.changed" && e.status === "completed") completed += e.amount;
            if (e.type === "chama.withdrawal.changed" && e.status === "approved") expect(e.approvals).not.toContain(e.memberId);
            if (!("journal" in e) || !e.journal) continue;
            expect(e.journal.postings.reduce((sum, p) => sum + p.amount, 0n)).toBe(0n);
            for (const p of e.journal.postings) if (p.account === CHAMA) chamaNet += p.amount;
          }
        }
        s = next;
        assertChamaInvariants(s.context);
        expect(s.context.posted).toBe(chamaNet);
        expect(s.context.posted).toBe(deposited - completed);
        expect(heldOf(s.context) <= s.context.posted).toBe(true);
        let contributed = 0n;
        for (const m of Object.values(s.context.members)) contributed += m.contributed;
        for (const m of Object.values(s.context.former)) contributed += m.contributed;
        expect(contributed).toBe(deposited);
      }
      if (process.env.CHAMA_FUZZ_STATS) console.log([...outcomes].sort().map(([k, v]) => `${k}: ${v}`).join("\n"));
      expect(outcomes.get("chama.withdrawal.complete ok") ?? 0).toBeGreaterThan(0);
    });
  }

  test("the random walks went through every money path, not only into refusals", () => {
    const paths = [
      "chama.deposit ok",
      "chama.withdrawal.request ok",
      "chama.withdrawal.request INSUFFICIENT_FUNDS",
      "chama.withdrawal.request LIMIT_EXCEEDED",
      "chama.withdrawal.review ok",
      "chama.withdrawal.continue ok",
      "chama.withdrawal.continue INVALID_TRANSITION",
      "chama.withdrawal.complete ok",
      "chama.withdrawal.fail ok",
      "chama.withdrawal.cancel ok",
      "chama.withdrawal.park ok",
      "chama.withdrawal.expire ok",
      "chama.member.remove ok",
      "chama.member.role ok",
    ];
    for (const path of paths) expect([path, seen.get(path) ?? 0]).not.toEqual([path, 0]);
  });
});
