import type { Db } from "../lib/db";
import { formatAmount } from "../lib/money";
import type { Asset } from "../lib/assets";
import { emptyChamaContext, heldOf, own, personOf, type ChamaContext } from "../machines/chama.context";
import type { AuditRecord, ChamaEffect } from "../machines/chama.events";
import { CHAMA_MACHINE_VERSION, chamaMachine } from "../machines/chama.machine";
import { decode, encode } from "./codec";
import { confirmAbsent } from "./store-errors";
import type { AggregateRows } from "./write-path";

/**
 * A chama's persistence: its snapshot (the truth) and the projections SQL reads (members,
 * withdrawals, reviews, audit), written with its journals, outbox events and idempotency records
 * through the one write path (actors/write-path.ts), guarded by the version the actor loaded, in
 * the same group commits as wallets.
 */
export type ChamaSnapshot = ReturnType<typeof chamaMachine.resolveState>;

export async function loadChama(db: Db, chamaId: string): Promise<{ snapshot: ChamaSnapshot; version: number }> {
  const [row] = await db`select version, machine_version, snapshot::text as snapshot from chamas where id = ${chamaId}`;
  if (!row) await confirmAbsent(db, "chamas", chamaId);
  if (!row) return { snapshot: chamaMachine.resolveState({ value: "unopened", context: emptyChamaContext(chamaId) }), version: 0 };
  if (row.machine_version !== CHAMA_MACHINE_VERSION) {
    throw new Error(`chama snapshot has machine version ${row.machine_version}, expected ${CHAMA_MACHINE_VERSION}`);
  }
  const persisted = decode<{ value: string; context: ChamaContext }>(row.snapshot);
  return { snapshot: chamaMachine.resolveState(persisted), version: Number(row.version) };
}

/** What a chama's batch writes besides what every aggregate writes (actors/write-path.ts). */
export const chamaRows: AggregateRows = {
  table: "chamas",
  aggregate: (w, to) => {
    const snapshot = w.snapshot as ChamaSnapshot;
    const context = snapshot.context;
    return {
      id: w.id,
      from_version: w.fromVersion,
      to_version: to,
      name: context.name,
      asset: context.asset,
      status: String(snapshot.value),
      created_by: context.createdBy,
      posted: context.posted.toString(),
      held: heldOf(context).toString(),
      machine_version: CHAMA_MACHINE_VERSION,
      snapshot: JSON.parse(encode({ value: snapshot.value, context })),
      created_at: w.at,
      updated_at: w.at,
    };
  },
  rows: (w) => {
    const context = (w.snapshot as ChamaSnapshot).context;
    const effects = w.effects as ChamaEffect[];
    return {
      chama_members: memberRows(context, effects, w.at),
      chama_withdrawals: withdrawalRows(context, effects),
      chama_reviews: effects.flatMap((e) =>
        e.type === "chama.withdrawal.reviewed"
          ? [{ withdrawal_id: e.withdrawalId, chama_id: e.chamaId, reviewer_id: e.reviewerId, decision: e.decision, note: e.note ?? null, status: e.status, at: e.at }]
          : [],
      ),
      chama_audit: effects.flatMap((e) =>
        e.type === "chama.audit.recorded"
          ? [{ chama_id: e.chamaId, actor: e.actor, action: e.action, target: e.target ?? null, before: shown(e.before, context.asset), after: shown(e.after, context.asset), note: e.note ?? null, via: e.via ?? null, at: e.at }]
          : [],
      ),
    };
  },
  // The audit trail is the chamas' own record; the outbox carries the domain events.
  event: (e) => (e.type === "chama.audit.recorded" ? undefined : { saga_pending: needsSaga(e as ChamaEffect) }),
};

/**
 * Events the transfer saga takes the next step for (src/workers/transfer-saga.ts): a contribution
 * that arrived (its wallet settles), and a withdrawal into a wallet whose money left for transit
 * (the wallet credits it). Committed with the step before, so a crash anywhere resumes.
 */
function needsSaga(e: ChamaEffect): boolean {
  return e.type === "chama.transfer.credited" || (e.type === "chama.withdrawal.changed" && e.status === "processing" && e.toWalletId !== undefined);
}

/** An audit record as stored: amounts formatted in the chama's asset, like everything callers read. */
function shown(record: AuditRecord | undefined, asset: string) {
  if (!record) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = typeof v === "bigint" ? formatAmount(v, asset as Asset) : v;
  return out;
}

/** One row for each person the batch touched, as the chama now sees them. */
function memberRows(context: ChamaContext, effects: ChamaEffect[], at: string) {
  const touched = new Set<string>();
  for (const e of effects) {
    if (e.type === "chama.opened") touched.add(e.createdBy);
    else if ("memberId" in e) touched.add(e.memberId);
  }
  return [...touched].map((memberId) => {
    const person = personOf(context, memberId);
    return {
      chama_id: context.chamaId,
      member_id: memberId,
      role: person.role,
      status: person.status,
      contributed: person.contributed.toString(),
      withdrawn: person.withdrawn.toString(),
      updated_at: at,
    };
  });
}

/** One row per withdrawal the batch touched (a request and its next steps may share a batch). */
function withdrawalRows(context: ChamaContext, effects: ChamaEffect[]) {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of effects) {
    if (e.type !== "chama.withdrawal.changed" && e.type !== "chama.withdrawal.reviewed") continue;
    const before = rows.get(e.withdrawalId);
    const open = own(context.withdrawals, e.withdrawalId);
    const changed = e.type === "chama.withdrawal.changed" ? e : undefined;
    rows.set(e.withdrawalId, {
      ...before,
      id: e.withdrawalId,
      chama_id: e.chamaId,
      member_id: changed?.memberId ?? before?.member_id ?? open?.memberId ?? "",
      asset: e.asset,
      amount: (changed?.amount ?? open?.amount ?? 0n).toString(),
      status: e.status,
      // Only the request carries the destination; later steps leave the stored one alone.
      destination: before?.destination ?? (changed?.from === "requested" ? changed.destination : undefined) ?? {},
      to_wallet_id: open?.toWalletId ?? changed?.toWalletId ?? (before?.to_wallet_id as string | undefined) ?? null,
      approvals: [...e.approvals],
      rejections: [...e.rejections],
      reason: changed?.reason ?? (before?.reason as string | undefined) ?? null,
      expires_at: open?.expiresAt ?? (before?.expires_at as string | undefined) ?? e.at,
      created_at: (before?.created_at as string | undefined) ?? e.at,
      updated_at: e.at,
    });
  }
  // A member removed or demoted takes their undecided votes along (no withdrawal effect says so):
  // open requests are refreshed from the chama's state; rows whose votes did not change are left
  // alone by the upsert.
  for (const e of effects) {
    if (e.type !== "chama.member.removed" && e.type !== "chama.member.role_changed") continue;
    for (const [id, w] of Object.entries(context.withdrawals)) {
      const stored = rows.get(id);
      rows.set(id, {
        id,
        chama_id: context.chamaId,
        member_id: w.memberId,
        asset: context.asset,
        amount: w.amount.toString(),
        status: w.status,
        destination: stored?.destination ?? w.destination,
        to_wallet_id: w.toWalletId ?? null,
        approvals: [...w.approvals],
        rejections: [...w.rejections],
        reason: stored?.reason ?? null,
        expires_at: w.expiresAt,
        created_at: stored?.created_at ?? w.requestedAt,
        updated_at: stored?.updated_at ?? e.at,
      });
    }
  }
  return [...rows.values()];
}
