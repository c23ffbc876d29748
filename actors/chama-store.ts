import type { Db } from "../lib/db";
import { formatAmount } from "../lib/money";
import type { Asset } from "../lib/assets";
import { emptyChamaContext, heldOf, own, personOf, type ChamaContext } from "../machines/chama.context";
import type { AuditRecord, ChamaEffect } from "../machines/chama.events";
import { CHAMA_MACHINE_VERSION, chamaMachine } from "../machines/chama.machine";
import type { ActorWrite } from "./actor-kind";
import { decode, encode } from "./codec";
import { claimKeys, writeOutbox } from "./aggregate-rows";
import { confirmAbsent, FencedError } from "./store-errors";
import { assertBalanced, sourceOf } from "./wallet-store";

/**
 * A chama's persistence: its snapshot (the truth) and the projections SQL reads (members,
 * withdrawals, reviews, audit), journals, outbox and idempotency records, in ONE transaction,
 * guarded by the version the actor loaded. Chamas are few and slow next to wallets, so each batch
 * is its own transaction rather than part of the wallets' group commit.
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

export async function commitChama(db: Db, write: ActorWrite): Promise<number> {
  const snapshot = write.snapshot as ChamaSnapshot;
  const context = snapshot.context;
  const effects = write.effects as ChamaEffect[];
  const journals = effects.flatMap((e) => ("journal" in e && e.journal ? [{ journal: e.journal, at: e.at, source: sourceOf(e, e.journal) }] : []));
  for (const { journal } of journals) assertBalanced(journal);
  const toVersion = effects.length ? write.fromVersion + 1 : write.fromVersion;

  await db.begin(async (tx) => {
    await claimKeys(tx, write);
    const row = {
      status: String(snapshot.value),
      posted: context.posted.toString(),
      held: heldOf(context).toString(),
      snapshot: encode({ value: snapshot.value, context }),
    };
    const written =
      write.fromVersion === 0
        ? await tx`insert into chamas (id, name, asset, status, created_by, posted, held, version, machine_version, snapshot, created_at, updated_at)
            values (${write.id}, ${context.name}, ${context.asset}, ${row.status}, ${context.createdBy}, ${row.posted}, ${row.held}, 1,
                    ${CHAMA_MACHINE_VERSION}, ${row.snapshot}::text::jsonb, ${write.at}, ${write.at})
            on conflict do nothing returning id`
        : await tx`update chamas set status = ${row.status}, posted = ${row.posted}, held = ${row.held}, version = ${toVersion},
              snapshot = ${row.snapshot}::text::jsonb, updated_at = case when ${toVersion}::bigint > version then ${write.at}::timestamptz else updated_at end
            where id = ${write.id} and version = ${write.fromVersion} returning id`;
    if (!written.length) throw new FencedError(write.id, write.fromVersion);
    if (!effects.length) return;

    for (const { journal, at, source } of journals) {
      await tx`insert into journals (id, kind, asset, wallet_id, reference, source_kind, source_id, created_at)
        values (${journal.id}, ${journal.kind}, ${journal.asset}, ${write.id}, ${journal.reference ?? null}, ${source.kind}, ${source.id}, ${at})`;
      for (const p of journal.postings) {
        await tx`insert into postings (journal_id, account, asset, amount) values (${journal.id}, ${p.account}, ${journal.asset}, ${p.amount.toString()})`;
      }
    }
    for (const m of memberRows(context, effects, write.at)) {
      await tx`insert into chama_members ${tx(m)} on conflict (chama_id, member_id) do update
        set role = excluded.role, status = excluded.status, contributed = excluded.contributed, withdrawn = excluded.withdrawn, updated_at = excluded.updated_at`;
    }
    for (const w of withdrawalRows(context, effects)) {
      const row = { ...w, destination: tx.json(w.destination as never), approvals: tx.json(w.approvals as never), rejections: tx.json(w.rejections as never) };
      await tx`insert into chama_withdrawals ${tx(row)} on conflict (id) do update
        set status = excluded.status, approvals = excluded.approvals, rejections = excluded.rejections,
            reason = coalesce(excluded.reason, chama_withdrawals.reason), updated_at = excluded.updated_at
        where (chama_withdrawals.status, chama_withdrawals.approvals, chama_withdrawals.rejections)
          is distinct from (excluded.status, excluded.approvals, excluded.rejections)`;
    }
    const reviews = effects.flatMap((e) =>
      e.type === "chama.withdrawal.reviewed"
        ? [{ withdrawal_id: e.withdrawalId, chama_id: e.chamaId, reviewer_id: e.reviewerId, decision: e.decision, note: e.note ?? null, status: e.status, at: e.at }]
        : [],
    );
    if (reviews.length) await tx`insert into chama_reviews ${tx(reviews)}`;
    const audits = effects.flatMap((e) =>
      e.type === "chama.audit.recorded"
        ? [{ chama_id: e.chamaId, actor: e.actor, action: e.action, target: e.target ?? null, before: shown(tx, e.before, context.asset), after: shown(tx, e.after, context.asset), note: e.note ?? null, via: e.via ?? null, at: e.at }]
        : [],
    );
    if (audits.length) await tx`insert into chama_audit ${tx(audits)}`;
    // The audit trail is the chamas' own record; the outbox carries the domain events.
    await writeOutbox(
      tx,
      write.id,
      effects.filter((e) => e.type !== "chama.audit.recorded" && e.type !== "rejected"),
      (e) => ({ saga_pending: needsSaga(e) }),
    );
  });
  return toVersion;
}

/**
 * Events the transfer saga takes the next step for (src/workers/transfer-saga.ts): a contribution
 * that arrived (its wallet settles), and a withdrawal into a wallet whose money left for transit
 * (the wallet credits it). Committed with the step before, so a crash anywhere resumes.
 */
function needsSaga(e: ChamaEffect): boolean {
  return e.type === "chama.transfer.credited" || (e.type === "chama.withdrawal.changed" && e.status === "processing" && e.toWalletId !== undefined);
}

/** An audit record as stored: amounts formatted in the chama's asset, like everything callers read. */
function shown(tx: Pick<Db, "json">, record: AuditRecord | undefined, asset: string) {
  if (!record) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = typeof v === "bigint" ? formatAmount(v, asset as Asset) : v;
  return tx.json(out as never);
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
