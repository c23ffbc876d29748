import type { ChamaRules } from "../../machines/chama.events";
import { decode } from "../../actors/codec";
import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import { authorize, type Action } from "../../lib/policy";
import type { Principal } from "../../lib/principal";
import { chamaView, chamaWithdrawalView, memberView } from "./chama-views";

/**
 * Chama reads, from committed state only (the projections chama-store.ts writes with each
 * snapshot). A user who is or was a member may read it; only its admins read its audit log.
 * Anyone else sees 404, exactly as for a chama that does not exist: one who was never part of it,
 * one only invited (an invitation is not membership), and one whose invitation was revoked.
 * A former member invited again is still a former member: their row says "invited", the
 * snapshot's `former` still names them.
 */
async function chamaFor(db: Db, p: Principal, chamaId: string, action: Action) {
  const [c] = await db`select c.id, c.name, c.asset, c.status, c.created_by, c.posted::text, c.held::text, c.snapshot->'context'->'rules' as rules,
      (select count(*) from chama_members m where m.chama_id = c.id and m.status = 'member')::int as members,
      (select coalesce(sum(contributed), 0)::text from chama_members m where m.chama_id = c.id and m.status = 'member') as total,
      (select jsonb_build_object('status', m.status, 'role', m.role) from chama_members m where m.chama_id = c.id and m.member_id = ${p.sub}) as caller,
      coalesce(c.snapshot->'context'->'former' ? ${p.sub}, false) as was_member
    from chamas c where c.id = ${chamaId}`;
  if (!c) throw new CofferError("CHAMA_NOT_FOUND", "chama not found");
  const caller = c.caller as { status: string; role: string | null } | null;
  const isOrWasMember = caller?.status === "member" || caller?.status === "former" || c.was_member === true;
  authorize(p, action, [isOrWasMember ? p.sub : "(nobody)"], "CHAMA_NOT_FOUND");
  // Members may see the chama exists; its audit log is for its admins.
  if (p.role === "user" && action === "chama.audit" && !(caller?.status === "member" && caller.role === "admin")) {
    throw new CofferError("FORBIDDEN", "only this chama's admins read its audit log");
  }
  return c;
}

export async function getChama(db: Db, p: Principal, chamaId: string) {
  const c = await chamaFor(db, p, chamaId, "chama.read");
  return chamaView({
    id: c.id,
    name: c.name,
    asset: c.asset,
    status: c.status,
    createdBy: c.created_by,
    posted: BigInt(c.posted),
    held: BigInt(c.held),
    // The rules as the snapshot stores them: bigints tagged, so decode brings them back.
    rules: decode<ChamaRules>(JSON.stringify(c.rules)),
    members: c.members,
  });
}

export async function listMembers(db: Db, p: Principal, chamaId: string, memberId?: string) {
  const c = await chamaFor(db, p, chamaId, "chama.read");
  const rows = await db`select member_id, role, status, contributed::text, withdrawn::text from chama_members
    where chama_id = ${chamaId} ${memberId === undefined ? db`` : db`and member_id = ${memberId}`}
    order by status, member_id limit 1000`;
  return rows.map((m) =>
    memberView({
      chamaId,
      memberId: m.member_id,
      role: m.role,
      status: m.status,
      contributed: BigInt(m.contributed),
      withdrawn: BigInt(m.withdrawn),
      asset: c.asset,
      total: BigInt(c.total),
    }),
  );
}

export async function getMember(db: Db, p: Principal, chamaId: string, memberId: string) {
  const [member] = await listMembers(db, p, chamaId, memberId);
  if (!member) throw new CofferError("NOT_FOUND", "this person is not part of this chama");
  return member;
}

const withdrawalRow = (w: Record<string, any>) =>
  chamaWithdrawalView({
    id: w.id,
    chamaId: w.chama_id,
    memberId: w.member_id,
    asset: w.asset,
    amount: w.amount,
    status: w.status,
    approvals: w.approvals,
    rejections: w.rejections,
    destination: w.destination,
    reason: w.reason,
    expiresAt: w.expires_at.toISOString(),
    createdAt: w.created_at.toISOString(),
    updatedAt: w.updated_at.toISOString(),
  });

export async function listChamaWithdrawals(db: Db, p: Principal, chamaId: string, q: { status?: string | undefined; pageSize: number; cursor?: string | undefined }) {
  await chamaFor(db, p, chamaId, "chama.read");
  const rows = await db`select id, chama_id, member_id, asset, amount::text, status, destination, approvals, rejections, reason, expires_at, created_at, updated_at
    from chama_withdrawals where chama_id = ${chamaId}
    ${q.status ? db`and status = ${q.status}` : db``}
    ${q.cursor ? db`and (created_at, id) < (select created_at, id from chama_withdrawals where id = ${q.cursor} and chama_id = ${chamaId})` : db``}
    order by created_at desc, id desc limit ${q.pageSize + 1}`;
  const page = rows.slice(0, q.pageSize);
  return { items: page.map(withdrawalRow), nextCursor: rows.length > q.pageSize ? page[page.length - 1]!.id : null };
}

export async function getChamaWithdrawal(db: Db, p: Principal, chamaId: string, withdrawalId: string) {
  await chamaFor(db, p, chamaId, "chama.read");
  const [w] = await db`select id, chama_id, member_id, asset, amount::text, status, destination, approvals, rejections, reason, expires_at, created_at, updated_at
    from chama_withdrawals where id = ${withdrawalId} and chama_id = ${chamaId}`;
  if (!w) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
  return withdrawalRow(w);
}

/** A withdrawal's reviews, oldest first (an admin reviews a withdrawal at most once, so they are few). */
export async function listChamaReviews(db: Db, p: Principal, chamaId: string, withdrawalId: string) {
  await chamaFor(db, p, chamaId, "chama.read");
  const [w] = await db`select 1 from chama_withdrawals where id = ${withdrawalId} and chama_id = ${chamaId}`;
  if (!w) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
  const reviews = await db`select reviewer_id, decision, note, status, at from chama_reviews where withdrawal_id = ${withdrawalId} order by seq limit 1000`;
  return {
    items: reviews.map((r) => ({ reviewerId: r.reviewer_id, decision: r.decision, ...(r.note ? { note: r.note } : {}), status: r.status, at: r.at.toISOString() })),
  };
}

/** Newest first; the cursor is the last `seq` seen. */
export async function listAudit(db: Db, p: Principal, chamaId: string, pageSize: number, cursor?: string) {
  await chamaFor(db, p, chamaId, "chama.audit");
  // Sorted and compared as the bigint it is (a.seq), never as the text it is sent as: an unqualified
  // `order by seq` would name the text column of the select list, where "10" sorts before "9".
  const rows = await db`select a.seq::text as seq, a.actor, a.action, a.target, a.before, a.after, a.note, a.via, a.at from chama_audit a
    where a.chama_id = ${chamaId} ${cursor ? db`and a.seq < ${cursor}::bigint` : db``} order by a.seq desc limit ${pageSize + 1}`;
  const page = rows.slice(0, pageSize);
  return {
    items: page.map((r) => ({
      seq: r.seq,
      actor: r.actor,
      action: r.action,
      ...(r.target ? { target: r.target } : {}),
      ...(r.before ? { before: r.before } : {}),
      ...(r.after ? { after: r.after } : {}),
      ...(r.note ? { note: r.note } : {}),
      ...(r.via ? { via: r.via } : {}),
      at: r.at.toISOString(),
    })),
    nextCursor: rows.length > pageSize ? page[page.length - 1]!.seq : null,
  };
}
