import type { Db } from "../src/db/client";
import type { Journal } from "../machines/journal";
import type { WalletEffect } from "../machines/wallet.events";
import { heldOf, WALLET_MACHINE_VERSION, walletMachine, type WalletContext } from "../machines/wallet.machine";
import { decode, encode } from "./codec";
import type { Idempotency, Outcome } from "./envelope";

/** A wallet's machine state as the actor holds it, plus the version it was loaded at (for fencing). */
export type WalletSnapshot = ReturnType<typeof walletMachine.resolveState>;

export interface Loaded {
  snapshot: WalletSnapshot;
  /** 0 when the wallet has no row yet. */
  version: number;
}

interface PersistedWallet {
  value: string;
  context: WalletContext;
}

export async function loadWallet(db: Db, walletId: string): Promise<Loaded> {
  const [row] = await db`select version, machine_version, snapshot::text as snapshot from wallets where id = ${walletId}`;
  if (!row) return { snapshot: walletMachine.resolveState({ value: "unopened", context: emptyContext(walletId) }), version: 0 };
  if (row.machine_version !== WALLET_MACHINE_VERSION) {
    // Snapshots are written by one machine version; a newer machine must migrate them explicitly.
    throw new Error(`wallet snapshot has machine version ${row.machine_version}, expected ${WALLET_MACHINE_VERSION}`);
  }
  const persisted = decode<PersistedWallet>(row.snapshot);
  return { snapshot: walletMachine.resolveState(persisted), version: Number(row.version) };
}

export function emptyContext(walletId: string): WalletContext {
  return { walletId, ownerId: "", asset: "", posted: 0n, withdrawals: {}, outgoing: {} };
}

/** The other side's write won: this actor's state is stale and must be reloaded. */
export class FencedError extends Error {
  constructor(walletId: string, version: number) {
    super(`wallet ${walletId} moved past version ${version}`);
  }
}

/** Some idempotency keys were committed by someone else meanwhile; their stored outcomes apply. */
export class KeysTakenError extends Error {
  constructor(readonly taken: Idempotency[]) {
    super(`${taken.length} idempotency keys already used`);
  }
}

export interface BatchWrite {
  walletId: string;
  /** The version this actor loaded (0: the wallet has no row yet). */
  fromVersion: number;
  snapshot: WalletSnapshot;
  at: string;
  effects: WalletEffect[];
  keyed: { idempotency: Idempotency; outcome: Outcome }[];
}

/** What one commit of several batches found: new versions, or who was fenced and which keys were taken. */
export interface CommitReport {
  ok: boolean;
  versions: Map<string, number>;
  fenced: Set<string>;
  taken: Map<string, Idempotency[]>;
}

class Abort extends Error {}

/**
 * Everything some batches did (each from a different wallet), in ONE transaction: idempotency
 * records, journals and postings, the rows effects describe, outbox events and each wallet's new
 * snapshot, guarded by the version its actor loaded. The statements are pipelined (sent together).
 * If any wallet was fenced or any key was already taken, nothing is written and the report says
 * which, so the caller can answer those and commit the rest again.
 */
export async function commitWrites(db: Db, writes: BatchWrite[]): Promise<CommitReport> {
  const report: CommitReport = { ok: true, versions: new Map(), fenced: new Set(), taken: new Map() };
  const journals = writes.flatMap((w) =>
    w.effects.flatMap((e) => ("journal" in e && e.journal ? [{ journal: e.journal, at: e.at, walletId: w.walletId }] : [])),
  );
  for (const { journal } of journals) assertBalanced(journal);
  const keyed = writes.flatMap((w) => w.keyed.map((k) => ({ ...k, walletId: w.walletId })));
  const created = writes.filter((w) => w.fromVersion === 0);
  const updated = writes.filter((w) => w.fromVersion > 0);

  try {
    await db.begin(async (tx) => {
      const q: Promise<unknown>[] = [];
      const keysInserted = keyed.length
        ? tx`insert into idempotency_keys ${tx(
            keyed.map(({ idempotency, outcome }) => ({
              scope: idempotency.scope,
              key: idempotency.key,
              fingerprint: idempotency.fingerprint,
              status: outcome.status,
              body: outcome.body as never,
            })),
            "scope", "key", "fingerprint", "status", "body",
          )} on conflict do nothing returning scope, key`
        : Promise.resolve([]);
      const walletsCreated = created.length
        ? tx`insert into wallets ${tx(created.map(walletRow), "id", "owner_id", "asset", "status", "posted", "held", "version", "machine_version", "snapshot", "created_at", "updated_at")}
             on conflict do nothing returning id`
        : Promise.resolve([]);
      const walletsUpdated = updated.length
        ? tx`update wallets as w set status = v.status, posted = v.posted::numeric, held = v.held::numeric,
               version = v.to_version::bigint, snapshot = v.snapshot::jsonb,
               updated_at = case when v.to_version::bigint > w.version then v.updated_at::timestamptz else w.updated_at end
             from (values ${tx(updated.map((u) => [u.walletId, u.fromVersion, toVersion(u), String(u.snapshot.value),
               u.snapshot.context.posted.toString(), heldOf(u.snapshot.context).toString(), persisted(u.snapshot), u.at]))})
               as v(id, from_version, to_version, status, posted, held, snapshot, updated_at)
             where w.id = v.id::uuid and w.version = v.from_version::bigint returning w.id`
        : Promise.resolve([]);

      if (journals.length) {
        q.push(tx`insert into journals ${tx(
          journals.map(({ journal, at, walletId }) => ({
            id: journal.id,
            kind: journal.kind,
            asset: journal.asset,
            wallet_id: walletId,
            reference: journal.reference ?? null,
            created_at: at,
          })),
          "id", "kind", "asset", "wallet_id", "reference", "created_at",
        )}`);
        q.push(tx`insert into postings ${tx(
          journals.flatMap(({ journal }) =>
            journal.postings.map((p) => ({ journal_id: journal.id, account: p.account, asset: journal.asset, amount: p.amount.toString() })),
          ),
          "journal_id", "account", "asset", "amount",
        )}`);
      }
      const effects = writes.flatMap((w) => w.effects);
      const withdrawals = withdrawalRows(effects);
      if (withdrawals.length) {
        q.push(tx`insert into withdrawals ${tx(withdrawals, "id", "wallet_id", "asset", "amount", "status", "destination", "reason", "created_at", "updated_at")}
          on conflict (id) do update set status = excluded.status, reason = coalesce(excluded.reason, withdrawals.reason), updated_at = excluded.updated_at`);
      }
      const transfers = transferRows(effects);
      if (transfers.length) {
        q.push(tx`insert into transfers ${tx(transfers, "id", "from_wallet_id", "to_wallet_id", "asset", "amount", "status", "reason", "created_at", "updated_at")}
          on conflict (id) do update set status = excluded.status, reason = coalesce(excluded.reason, transfers.reason), updated_at = excluded.updated_at`);
      }
      const events = effects.filter((e) => e.type !== "rejected");
      if (events.length) {
        q.push(tx`insert into outbox ${tx(
          events.map((e) => ({
            id: Bun.randomUUIDv7(),
            aggregate_id: (e as { walletId: string }).walletId,
            type: e.type,
            payload: JSON.parse(encodeForOutbox(e)),
            created_at: e.at,
            saga_pending: e.type === "transfer.reserved" || e.type === "transfer.credited",
          })),
          "id", "aggregate_id", "type", "payload", "created_at", "saga_pending",
        )}`);
      }

      const [inserted, made, moved] = (await Promise.all([keysInserted, walletsCreated, walletsUpdated, ...q])) as { [k: string]: string }[][];
      const written = new Set([...made!, ...moved!].map((r) => r.id));
      for (const w of writes) {
        if (written.has(w.walletId)) report.versions.set(w.walletId, toVersion(w));
        else report.fenced.add(w.walletId);
      }
      if (inserted!.length !== keyed.length) {
        const got = new Set(inserted!.map((r) => `${r.scope}\u0000${r.key}`));
        for (const k of keyed) {
          if (got.has(`${k.idempotency.scope}\u0000${k.idempotency.key}`)) continue;
          report.taken.set(k.walletId, [...(report.taken.get(k.walletId) ?? []), k.idempotency]);
        }
      }
      if (report.fenced.size || report.taken.size) throw new Abort();
    });
  } catch (error) {
    if (!(error instanceof Abort)) throw error;
    report.ok = false;
    report.versions.clear();
  }
  return report;
}

/**
 * A batch that only refused things (and records those refusals under their keys) leaves the wallet
 * as it was: the version is checked (fencing) but not moved.
 */
function toVersion(w: BatchWrite): number {
  return w.effects.length ? w.fromVersion + 1 : w.fromVersion;
}

function walletRow(w: BatchWrite) {
  const c = w.snapshot.context;
  const opened = w.effects.find((e) => e.type === "wallet.opened");
  return {
    id: w.walletId,
    owner_id: c.ownerId,
    asset: c.asset,
    status: String(w.snapshot.value),
    posted: c.posted.toString(),
    held: heldOf(c).toString(),
    version: 1,
    machine_version: WALLET_MACHINE_VERSION,
    snapshot: JSON.parse(persisted(w.snapshot)),
    created_at: opened?.at ?? w.at,
    updated_at: w.at,
  };
}

/** Stored outcomes for keys someone else committed. */
export async function loadOutcomes(db: Db, keys: Idempotency[]): Promise<Map<string, { fingerprint: string; outcome: Outcome }>> {
  const found = new Map<string, { fingerprint: string; outcome: Outcome }>();
  if (!keys.length) return found;
  const rows = await db`select k.scope, k.key, k.fingerprint, k.status, k.body from idempotency_keys k
    join unnest(${db.array(keys.map((k) => k.scope))}::text[], ${db.array(keys.map((k) => k.key))}::text[]) as wanted(scope, key)
      on k.scope = wanted.scope and k.key = wanted.key`;
  for (const r of rows) found.set(`${r.scope}\u0000${r.key}`, { fingerprint: r.fingerprint, outcome: { status: r.status, body: r.body } });
  return found;
}

function persisted(snapshot: WalletSnapshot): string {
  return encode({ value: snapshot.value, context: snapshot.context } satisfies PersistedWallet);
}

/**
 * Outbox payloads carry amounts as decimal strings of minor units, readable by any consumer.
 * Payout destinations stay in their own row: events travel further than the database does.
 */
function encodeForOutbox(effect: WalletEffect): string {
  return JSON.stringify(effect, (k, v) => (k === "destination" ? undefined : typeof v === "bigint" ? v.toString() : v));
}

function assertBalanced(journal: Journal): void {
  let sum = 0n;
  for (const p of journal.postings) sum += p.amount;
  if (sum !== 0n || journal.postings.length < 2) throw new Error(`journal ${journal.id} does not balance`);
}

/** One row per withdrawal touched in the batch (a request and its next step may share a batch). */
function withdrawalRows(effects: WalletEffect[]) {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of effects) {
    if (e.type !== "withdrawal.changed") continue;
    const before = rows.get(e.withdrawalId);
    rows.set(e.withdrawalId, {
      id: e.withdrawalId,
      wallet_id: e.walletId,
      asset: e.asset,
      amount: e.amount.toString(),
      status: e.status,
      destination: before?.destination ?? e.destination ?? {},
      reason: e.reason ?? (before?.reason as string | undefined) ?? null,
      created_at: (before?.created_at as string) ?? e.at,
      updated_at: e.at,
    });
  }
  return [...rows.values()];
}

function transferRows(effects: WalletEffect[]) {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of effects) {
    if (e.type !== "transfer.reserved" && e.type !== "transfer.settled" && e.type !== "transfer.voided") continue;
    const before = rows.get(e.transferId);
    rows.set(e.transferId, {
      id: e.transferId,
      from_wallet_id: e.walletId,
      to_wallet_id: e.toWalletId,
      asset: e.asset,
      amount: e.amount.toString(),
      status: e.type === "transfer.reserved" ? "pending" : e.type === "transfer.settled" ? "settled" : "voided",
      reason: e.type === "transfer.voided" ? e.reason : null,
      created_at: (before?.created_at as string) ?? e.at,
      updated_at: e.at,
    });
  }
  return [...rows.values()];
}
