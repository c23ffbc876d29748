import {
  actorOf,
  availableOf,
  CHAMA_LIMITS,
  type ChamaContext,
  type ChamaMember,
  type ChamaWithdrawal,
  defined,
  own,
  mergeRules,
  pruneRecent,
  timeOf,
  withoutKey,
} from "./chama.context";
import type { AuditRecord, ChamaCommand, ChamaCommandType, ChamaEffect } from "./chama.events";
import {
  type ChamaWithdrawalStatus,
  type ChamaWithdrawalStep,
  type EndedChamaWithdrawalStatus,
  nextChamaWithdrawalStatus,
  UNSTARTED_CHAMA_WITHDRAWAL_STATUSES,
} from "./chama.withdrawal";
import { type Journal, move, SYSTEM_ACCOUNT } from "./journal";

/**
 * What an accepted chama command does. Pure leaves: context in, a context patch and effects out.
 * The machine (chama.machine.ts) has already refused everything that breaks a rule; what reaches
 * here is allowed, so a missing member or withdrawal is a programmer error (the `!`s).
 */
export type Cmd<T extends ChamaCommandType> = Extract<ChamaCommand, { type: T }>;
export type WithdrawalStepCommand = Cmd<
  | "chama.withdrawal.review"
  | "chama.withdrawal.park"
  | "chama.withdrawal.continue"
  | "chama.withdrawal.complete"
  | "chama.withdrawal.fail"
  | "chama.withdrawal.cancel"
  | "chama.withdrawal.expire"
  | "chama.withdrawal.settle"
  | "chama.withdrawal.void"
  | "chama.withdrawal.hold"
>;

/** Which step of the withdrawal machine each command asks for. */
export const STEP_OF: Record<WithdrawalStepCommand["type"], ChamaWithdrawalStep> = {
  "chama.withdrawal.review": "review",
  "chama.withdrawal.park": "park",
  "chama.withdrawal.continue": "continue",
  "chama.withdrawal.complete": "complete",
  "chama.withdrawal.fail": "fail",
  "chama.withdrawal.cancel": "cancel",
  "chama.withdrawal.expire": "expire",
  // A withdrawal paid into a wallet ends as the others do: completed once the wallet took it, failed if not.
  "chama.withdrawal.settle": "complete",
  "chama.withdrawal.void": "fail",
  // Transaction monitoring's hold is a park, by the platform.
  "chama.withdrawal.hold": "park",
};

export interface Reply {
  patch: Partial<ChamaContext>;
  effects: ChamaEffect[];
}

export function applyCommand(context: ChamaContext, command: ChamaCommand): Reply {
  switch (command.type) {
    case "chama.open":
      return open(context, command);
    case "chama.freeze":
    case "chama.unfreeze":
    case "chama.close":
      return lifecycle(context, command);
    case "chama.member.invite":
      return invite(context, command);
    case "chama.member.accept":
    case "chama.member.add":
      return join(context, command);
    case "chama.member.remove":
      return remove(context, command);
    case "chama.member.role":
      return changeRole(context, command);
    case "chama.rules.change":
      return changeRules(context, command);
    case "chama.deposit":
      return deposit(context, command);
    case "chama.transfer.credit":
      return contribution(context, command);
    case "chama.withdrawal.request":
      return request(context, command);
    case "chama.withdrawal.review":
      return review(context, command);
    case "chama.withdrawal.park":
    case "chama.withdrawal.continue":
    case "chama.withdrawal.cancel":
    case "chama.withdrawal.expire":
    case "chama.withdrawal.fail":
    case "chama.withdrawal.complete":
    case "chama.withdrawal.settle":
    case "chama.withdrawal.void":
      return withdrawalStep(context, command);
    case "chama.withdrawal.hold":
      return platformHold(context, command);
    case "chama.withdrawal.release":
      return platformDecision(context, command);
  }
}

const subject = (context: ChamaContext, at: string) => ({ chamaId: context.chamaId, asset: context.asset, at });


interface AuditFields {
  target?: string;
  before?: AuditRecord;
  after?: AuditRecord;
  note?: string;
  /** What reported it, when the command does not say: the transfer a contribution arrived by. */
  via?: string;
}

function audit(context: ChamaContext, command: ChamaCommand, fields: AuditFields = {}): ChamaEffect {
  const via = "via" in command ? command.via : fields.via;
  return { type: "chama.audit.recorded", ...subject(context, command.at), actor: actorOf(command), action: command.type, ...defined({ ...fields, via }) };
}

function open(context: ChamaContext, command: Cmd<"chama.open">): Reply {
  const next: ChamaContext = {
    ...context,
    chamaId: command.chamaId,
    name: command.name,
    asset: command.asset,
    createdBy: command.createdBy,
    members: { [command.createdBy]: newMember("admin", command.at) },
  };
  return {
    patch: next,
    effects: [
      { type: "chama.opened", ...subject(next, command.at), name: command.name, createdBy: command.createdBy },
      audit(next, command, { target: command.chamaId, after: { name: command.name, asset: command.asset, admin: command.createdBy } }),
    ],
  };
}

const LIFECYCLE = {
  "chama.freeze": { type: "chama.frozen", before: { state: "active" }, after: { state: "frozen" } },
  "chama.unfreeze": { type: "chama.unfrozen", before: { state: "frozen" }, after: { state: "active" } },
  // Closing is allowed from active and from frozen; the state before is in the audit trail already.
  "chama.close": { type: "chama.closed", before: undefined, after: { state: "closed" } },
} as const;

function lifecycle(context: ChamaContext, command: Cmd<"chama.freeze" | "chama.unfreeze" | "chama.close">): Reply {
  const { type, before, after } = LIFECYCLE[command.type];
  return {
    patch: {},
    effects: [{ type, ...subject(context, command.at), by: command.by }, audit(context, command, defined({ before, after }))],
  };
}

function newMember(role: ChamaMember["role"], at: string, former?: { contributed: bigint; withdrawn: bigint }): ChamaMember {
  return { role, joinedAt: at, contributed: former?.contributed ?? 0n, withdrawn: former?.withdrawn ?? 0n };
}

function invite(context: ChamaContext, command: Cmd<"chama.member.invite">): Reply {
  return {
    patch: { invitations: { ...context.invitations, [command.memberId]: { role: command.role, invitedBy: command.by, invitedAt: command.at } } },
    effects: [
      { type: "chama.member.invited", ...subject(context, command.at), memberId: command.memberId, role: command.role, by: command.by },
      audit(context, command, { target: command.memberId, after: { invited: command.role } }),
    ],
  };
}

/** Accepting an invitation or being added directly. A former member gets their contributions back. */
function join(context: ChamaContext, command: Cmd<"chama.member.accept" | "chama.member.add">): Reply {
  const invitation = own(context.invitations, command.memberId);
  const role = command.type === "chama.member.add" ? command.role : invitation!.role;
  const member = newMember(role, command.at, own(context.former, command.memberId));
  return {
    patch: {
      members: { ...context.members, [command.memberId]: member },
      invitations: withoutKey(context.invitations, command.memberId),
      former: withoutKey(context.former, command.memberId),
    },
    effects: [
      { type: "chama.member.joined", ...subject(context, command.at), memberId: command.memberId, role, by: actorOf(command), contributed: member.contributed },
      audit(context, command, {
        target: command.memberId,
        ...(invitation ? { before: { invited: invitation.role } } : {}),
        after: { role, contributed: member.contributed },
      }),
    ],
  };
}

function remove(context: ChamaContext, command: Cmd<"chama.member.remove">): Reply {
  const member = own(context.members, command.memberId);
  if (!member) {
    const invitation = own(context.invitations, command.memberId)!;
    return {
      patch: { invitations: withoutKey(context.invitations, command.memberId) },
      effects: [
        { type: "chama.member.invitation_revoked", ...subject(context, command.at), memberId: command.memberId, by: command.by },
        audit(context, command, { target: command.memberId, before: { invited: invitation.role }, after: { invited: null } }),
      ],
    };
  }

  // A removed member's requests that have not started paying out are cancelled (their holds
  // released); a payout already in flight still completes or fails.
  let next: ChamaContext = context;
  const effects: ChamaEffect[] = [];
  const cancelled: string[] = [];
  for (const [id, w] of Object.entries(context.withdrawals)) {
    if (w.memberId !== command.memberId || !(UNSTARTED_CHAMA_WITHDRAWAL_STATUSES as readonly string[]).includes(w.status)) continue;
    effects.push(changed(next, command, id, w, w.status, "cancelled", { by: command.by, reason: "member removed" }));
    next = { ...next, ...endWithdrawal(next, id, "cancelled", command.at) };
    cancelled.push(id);
  }
  next = {
    ...next,
    withdrawals: withoutVotesOf(next, command.memberId),
    members: withoutKey(next.members, command.memberId),
    former: rememberFormer(next, command.memberId, member, command.at),
  };
  effects.push(
    {
      type: "chama.member.removed",
      ...subject(context, command.at),
      memberId: command.memberId,
      role: member.role,
      by: command.by,
      contributed: member.contributed,
      ...defined({ reason: command.reason }),
    },
    audit(context, command, {
      target: command.memberId,
      before: { role: member.role, contributed: member.contributed, available: availableOf(context) },
      after: { role: null, cancelled, available: availableOf(next) },
      ...defined({ note: command.reason }),
    }),
  );
  return { patch: { members: next.members, former: next.former, withdrawals: next.withdrawals, recent: next.recent, ended: next.ended }, effects };
}

/** Contributions outlive membership; past the bound the one who left longest ago is forgotten. */
function rememberFormer(context: ChamaContext, memberId: string, member: ChamaMember, at: string): ChamaContext["former"] {
  let former = { ...context.former, [memberId]: { contributed: member.contributed, withdrawn: member.withdrawn, leftAt: at } };
  while (Object.keys(former).length > CHAMA_LIMITS.formerMax) {
    const [oldest] = Object.entries(former).sort(([, a], [, b]) => timeOf(a.leftAt) - timeOf(b.leftAt))[0]!;
    former = withoutKey(former, oldest);
  }
  return former;
}

/** Undecided requests stop counting the votes of someone who is no longer an admin. */
function withoutVotesOf(context: ChamaContext, memberId: string): ChamaContext["withdrawals"] {
  const withdrawals = { ...context.withdrawals };
  for (const [id, w] of Object.entries(withdrawals)) {
    if (w.status !== "pending_approval" && w.status !== "manual_review") continue;
    if (!w.approvals.includes(memberId) && !w.rejections.includes(memberId)) continue;
    withdrawals[id] = { ...w, approvals: w.approvals.filter((m) => m !== memberId), rejections: w.rejections.filter((m) => m !== memberId) };
  }
  return withdrawals;
}

function changeRole(context: ChamaContext, command: Cmd<"chama.member.role">): Reply {
  const member = own(context.members, command.memberId)!;
  const members = { ...context.members, [command.memberId]: { ...member, role: command.role } };
  return {
    patch: {
      members,
      ...(command.role === "admin" ? {} : { withdrawals: withoutVotesOf(context, command.memberId) }),
    },
    effects: [
      { type: "chama.member.role_changed", ...subject(context, command.at), memberId: command.memberId, before: member.role, after: command.role, by: command.by },
      audit(context, command, { target: command.memberId, before: { role: member.role }, after: { role: command.role } }),
    ],
  };
}

function changeRules(context: ChamaContext, command: Cmd<"chama.rules.change">): Reply {
  const before = context.rules;
  const after = mergeRules(before, command.rules);
  return {
    patch: { rules: after },
    effects: [
      { type: "chama.rules.changed", ...subject(context, command.at), before, after, by: command.by },
      audit(context, command, { before: { ...before }, after: { ...after } }),
    ],
  };
}

function deposit(context: ChamaContext, command: Cmd<"chama.deposit">): Reply {
  const member = own(context.members, command.memberId)!;
  const contributed = member.contributed + command.amount;
  const posted = context.posted + command.amount;
  const journal = move(command.journalId, "chama_deposit", context.asset, SYSTEM_ACCOUNT.funding, context.chamaId, command.amount, command.reference);
  return {
    patch: { posted, members: { ...context.members, [command.memberId]: { ...member, contributed } } },
    effects: [
      { type: "chama.deposited", ...subject(context, command.at), memberId: command.memberId, amount: command.amount, contributed, journal },
      audit(context, command, {
        target: command.memberId,
        before: { posted: context.posted, contributed: member.contributed },
        after: { posted, contributed },
      }),
    ],
  };
}

/**
 * A member's contribution from their own wallet arrived (the wallet reserved it into transit): the
 * chama takes it (transit → chama) and credits it to the member, as a deposit is. The audit record
 * names the transfer it came by.
 */
function contribution(context: ChamaContext, command: Cmd<"chama.transfer.credit">): Reply {
  const member = own(context.members, command.memberId)!;
  const contributed = member.contributed + command.amount;
  const posted = context.posted + command.amount;
  const journal = move(command.journalId, "chama_contribution", context.asset, SYSTEM_ACCOUNT.transit, context.chamaId, command.amount);
  return {
    patch: { posted, members: { ...context.members, [command.memberId]: { ...member, contributed } } },
    effects: [
      {
        type: "chama.transfer.credited",
        ...subject(context, command.at),
        transferId: command.transferId,
        memberId: command.memberId,
        fromWalletId: command.fromWalletId,
        amount: command.amount,
        contributed,
        journal,
      },
      audit(context, command, {
        target: command.memberId,
        before: { posted: context.posted, contributed: member.contributed },
        after: { posted, contributed },
        via: `transfer:${command.transferId}`,
      }),
    ],
  };
}

function request(context: ChamaContext, command: Cmd<"chama.withdrawal.request">): Reply {
  const nowMs = timeOf(command.at);
  const status = nextChamaWithdrawalStatus("requested", "submit") as "pending_approval";
  const w: ChamaWithdrawal = {
    memberId: command.memberId,
    amount: command.amount,
    status,
    approvals: [],
    rejections: [],
    requestedAt: command.at,
    expiresAt: new Date(nowMs + context.rules.requestLifetimeMs).toISOString(),
    destination: command.destination,
    ...defined({ toWalletId: command.toWalletId }),
  };
  const next: ChamaContext = {
    ...context,
    withdrawals: { ...context.withdrawals, [command.withdrawalId]: w },
    recent: [...pruneRecent(context.recent, context.rules, nowMs), { withdrawalId: command.withdrawalId, amount: command.amount, at: command.at }],
  };
  return {
    patch: { withdrawals: next.withdrawals, recent: next.recent },
    effects: [
      changed(context, command, command.withdrawalId, w, "requested", status, { by: command.memberId, destination: command.destination }),
      audit(context, command, {
        target: command.withdrawalId,
        before: { available: availableOf(context) },
        after: { status, amount: command.amount, expiresAt: w.expiresAt, available: availableOf(next) },
      }),
    ],
  };
}

function review(context: ChamaContext, command: Cmd<"chama.withdrawal.review">): Reply {
  const w = own(context.withdrawals, command.withdrawalId)!;
  const approving = command.decision === "approve";
  const approvals = approving ? [...w.approvals, command.reviewerId] : w.approvals;
  const rejections = approving ? w.rejections : [...w.rejections, command.reviewerId];
  const decided = approving ? approvals.length >= context.rules.approvalsRequired : rejections.length >= context.rules.rejectionsToReject;
  const status = nextChamaWithdrawalStatus(w.status, decided ? (approving ? "approve" : "reject") : "review")!;
  const reviewed: ChamaWithdrawal = { ...w, approvals, rejections };

  let next: ChamaContext;
  if (status === "rejected") next = { ...context, ...endWithdrawal(context, command.withdrawalId, "rejected", command.at) };
  else next = { ...context, withdrawals: { ...context.withdrawals, [command.withdrawalId]: { ...reviewed, status: status as ChamaWithdrawal["status"] } } };

  const effects: ChamaEffect[] = [
    {
      type: "chama.withdrawal.reviewed",
      ...subject(context, command.at),
      withdrawalId: command.withdrawalId,
      reviewerId: command.reviewerId,
      decision: command.decision,
      status,
      approvals,
      rejections,
      ...defined({ note: command.note }),
    },
  ];
  if (status !== w.status) {
    effects.push(changed(context, command, command.withdrawalId, reviewed, w.status, status, { by: command.reviewerId, note: command.note }));
  }
  effects.push(
    audit(context, command, {
      target: command.withdrawalId,
      before: { status: w.status, approvals: w.approvals, rejections: w.rejections, available: availableOf(context) },
      after: { status, approvals, rejections, available: availableOf(next) },
      ...defined({ note: command.note }),
    }),
  );
  return { patch: { withdrawals: next.withdrawals, recent: next.recent, ended: next.ended }, effects };
}

/**
 * Park, continue, cancel, expire, fail or complete: one step of the withdrawal machine. A
 * withdrawal paid into a wallet moves its money when it is continued (chama → transit: the hold
 * becomes a posting out), then ends by `settle` (the wallet took it: completed, nothing more to
 * post) or `void` (the wallet refused: transit → chama, failed, the money available again).
 */
function withdrawalStep(
  context: ChamaContext,
  command: Cmd<
    | "chama.withdrawal.park"
    | "chama.withdrawal.continue"
    | "chama.withdrawal.cancel"
    | "chama.withdrawal.expire"
    | "chama.withdrawal.fail"
    | "chama.withdrawal.complete"
    | "chama.withdrawal.settle"
    | "chama.withdrawal.void"
  >,
): Reply {
  const w = own(context.withdrawals, command.withdrawalId)!;
  const status = nextChamaWithdrawalStatus(w.status, STEP_OF[command.type])!;
  const by = actorOf(command);
  const reason = "reason" in command ? command.reason : undefined;
  const note = "note" in command ? command.note : undefined;

  let next: ChamaContext;
  let journal: Journal | undefined;
  if (status === "processing" && w.toWalletId !== undefined) {
    // Into a wallet: the money leaves for transit now, as a transfer's sender reserves it.
    const id = (command as Cmd<"chama.withdrawal.continue">).journalId!;
    journal = move(id, "chama_withdrawal", context.asset, context.chamaId, SYSTEM_ACCOUNT.transit, w.amount);
    next = { ...context, withdrawals: { ...context.withdrawals, [command.withdrawalId]: { ...w, status } }, posted: context.posted - w.amount };
  } else if (status === "manual_review" || status === "processing") {
    // Parking clears approvals: they were given before anyone said why the request looked wrong.
    const updated: ChamaWithdrawal = { ...w, status, ...(status === "manual_review" ? { approvals: [] } : {}) };
    next = { ...context, withdrawals: { ...context.withdrawals, [command.withdrawalId]: updated } };
  } else if (status === "completed" && w.toWalletId !== undefined) {
    // The wallet took it: the money left at continue, so only the withdrawal ends.
    next = { ...context, ...endWithdrawal(context, command.withdrawalId, status, command.at), ...withdrawnBy(context, w) };
  } else if (status === "failed" && w.toWalletId !== undefined) {
    // The wallet refused it: the money comes back from transit and is the chama's to use again.
    const id = (command as Cmd<"chama.withdrawal.void">).journalId;
    journal = move(id, "chama_withdrawal_void", context.asset, SYSTEM_ACCOUNT.transit, context.chamaId, w.amount);
    next = { ...context, ...endWithdrawal(context, command.withdrawalId, status, command.at), posted: context.posted + w.amount };
  } else if (status === "completed") {
    // The hold becomes a posting: the money leaves the chama for the withdrawals account.
    const id = (command as Cmd<"chama.withdrawal.complete">).journalId;
    journal = move(id, "chama_withdrawal", context.asset, context.chamaId, SYSTEM_ACCOUNT.withdrawals, w.amount);
    next = { ...context, ...endWithdrawal(context, command.withdrawalId, status, command.at), posted: context.posted - w.amount, ...withdrawnBy(context, w) };
  } else {
    next = { ...context, ...endWithdrawal(context, command.withdrawalId, status as EndedChamaWithdrawalStatus, command.at) };
  }

  const after = own(next.withdrawals, command.withdrawalId) ?? { ...w, status };
  return {
    patch: {
      withdrawals: next.withdrawals,
      recent: next.recent,
      ended: next.ended,
      posted: next.posted,
      members: next.members,
      former: next.former,
    },
    effects: [
      changed(context, command, command.withdrawalId, after as ChamaWithdrawal, w.status, status, {
        by,
        reason,
        note,
        // The payout needs to know where the money goes; completion does not repeat it.
        destination: status === "processing" ? w.destination : undefined,
        journal,
      }),
      audit(context, command, {
        target: command.withdrawalId,
        before: { status: w.status, posted: context.posted, available: availableOf(context) },
        after: { status, posted: next.posted, available: availableOf(next) },
        ...defined({ note: reason ?? note }),
      }),
    ],
  };
}

/**
 * Transaction monitoring parks a request for the platform's review: as an admin's park (manual
 * review, approvals so far cleared), and marked so the chama's admins cannot review it until a
 * platform admin has released it.
 */
function platformHold(context: ChamaContext, command: Cmd<"chama.withdrawal.hold">): Reply {
  const w = own(context.withdrawals, command.withdrawalId)!;
  const status = nextChamaWithdrawalStatus(w.status, "park") as "manual_review";
  const held: ChamaWithdrawal = { ...w, status, approvals: [], heldByPlatform: true };
  return {
    patch: { withdrawals: { ...context.withdrawals, [command.withdrawalId]: held } },
    effects: [
      changed(context, command, command.withdrawalId, held, w.status, status, { by: actorOf(command), note: command.note }),
      audit(context, command, {
        target: command.withdrawalId,
        before: { status: w.status, approvals: w.approvals },
        after: { status, approvals: [], heldByPlatform: true },
        ...defined({ note: command.note }),
      }),
    ],
  };
}

/**
 * A platform admin's word on a request monitoring held: released, it stays in manual review for the
 * chama's own admins to approve or reject as usual; rejected, it ends (the hold is released).
 */
function platformDecision(context: ChamaContext, command: Cmd<"chama.withdrawal.release">): Reply {
  const w = own(context.withdrawals, command.withdrawalId)!;
  if (command.decision === "release") {
    const { heldByPlatform: _held, ...released } = w;
    return {
      patch: { withdrawals: { ...context.withdrawals, [command.withdrawalId]: released } },
      effects: [
        changed(context, command, command.withdrawalId, released, w.status, w.status, { by: command.by, note: command.note }),
        audit(context, command, {
          target: command.withdrawalId,
          before: { status: w.status, heldByPlatform: true },
          after: { status: w.status, heldByPlatform: false },
          ...defined({ note: command.note }),
        }),
      ],
    };
  }
  const status = nextChamaWithdrawalStatus(w.status, "reject") as "rejected";
  const next: ChamaContext = { ...context, ...endWithdrawal(context, command.withdrawalId, status, command.at) };
  return {
    patch: { withdrawals: next.withdrawals, recent: next.recent, ended: next.ended },
    effects: [
      changed(context, command, command.withdrawalId, w, w.status, status, { by: command.by, note: command.note }),
      audit(context, command, {
        target: command.withdrawalId,
        before: { status: w.status, available: availableOf(context) },
        after: { status, available: availableOf(next) },
        ...defined({ note: command.note }),
      }),
    ],
  };
}

/** The requester's share records what they took out, even if they have left the chama since. */
function withdrawnBy(context: ChamaContext, w: ChamaWithdrawal): Partial<ChamaContext> {
  const member = own(context.members, w.memberId);
  if (member) return { members: { ...context.members, [w.memberId]: { ...member, withdrawn: member.withdrawn + w.amount } } };
  const former = own(context.former, w.memberId);
  if (former) return { former: { ...context.former, [w.memberId]: { ...former, withdrawn: former.withdrawn + w.amount } } };
  return {};
}

/**
 * A withdrawal ends: it stops holding money, and unless money left (completed) it stops counting
 * toward the daily and window limits. The end is remembered (bounded) so later steps are refused
 * with a clear reason and the id is never reused.
 */
function endWithdrawal(
  context: ChamaContext,
  id: string,
  status: EndedChamaWithdrawalStatus,
  at: string,
): Pick<ChamaContext, "withdrawals" | "recent" | "ended"> {
  return {
    withdrawals: withoutKey(context.withdrawals, id),
    recent: status === "completed" ? context.recent : context.recent.filter((counted) => counted.withdrawalId !== id),
    ended: [...context.ended, { withdrawalId: id, status, at }].slice(-CHAMA_LIMITS.endedMax),
  };
}

function changed(
  context: ChamaContext,
  command: ChamaCommand,
  id: string,
  w: ChamaWithdrawal,
  from: ChamaWithdrawalStatus,
  status: ChamaWithdrawalStatus,
  extra: { by: string; destination?: ChamaWithdrawal["destination"]; reason?: string; note?: string; journal?: Journal },
): ChamaEffect {
  return {
    type: "chama.withdrawal.changed",
    ...subject(context, command.at),
    withdrawalId: id,
    memberId: w.memberId,
    amount: w.amount,
    from,
    status,
    approvals: w.approvals,
    rejections: w.rejections,
    ...defined({ ...extra, toWalletId: w.toWalletId }),
  };
}
