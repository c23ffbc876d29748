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
  fromVersion: number;
  snapshot: WalletSnapshot;
  at: string;
  effects: WalletEffect[];
  keyed: { idempotency: Idempotency; outcome: Outcome }[];
}

/**
 * Everything a batch did, in one transaction: idempotency records, journals and postings, the rows
 * effects describe, outbox events and the new snapshot, guarded by the version the actor loaded.
 * The statements are pipelined (sent together), so a batch costs about one round trip.
 */
export async function commitBatch(db: Db, write: BatchWrite): Promise<number> {
  const context = write.snapshot.context;
  const toVersion = write.fromVersion + 1;
  const journals = write.effects.flatMap((e) => ("journal" in e && e.journal ? [{ journal: e.journal, effect: e }] : []));
  for (const { journal } of journals) assertBalanced(journal);

  return db.begin(async (tx) => {
    const keyRows = write.keyed.map(({ idempotency, outcome }) => ({
      scope: idempotency.scope,
      key: idempotency.key,
      fingerprint: idempotency.fingerprint,
      status: outcome.status,
      body: outcome.body as never,
    }));
    const pending: Promise<unknown>[] = [];
    const keysInserted = keyRows.length
      ? tx`insert into idempotency_keys ${tx(keyRows, "scope", "key", "fingerprint", "status", "body")}
           on conflict do nothing returning scope, key`
      : Promise.resolve([]);

    const opened = write.effects.find((e) => e.type === "wallet.opened");
    const walletWrite =
      write.fromVersion === 0
        ? tx`insert into wallets (id, owner_id, asset, status, posted, held, version, machine_version, snapshot, created_at, updated_at)
             values (${context.walletId}, ${context.ownerId}, ${context.asset}, ${String(write.snapshot.value)},
                     ${context.posted.toString()}, ${heldOf(context).toString()}, ${toVersion}, ${WALLET_MACHINE_VERSION},
                     ${persisted(write.snapshot)}::jsonb, ${opened?.at ?? write.at}, ${write.at})
             on conflict do nothing returning id`
        : tx`update wallets set status = ${String(write.snapshot.value)}, posted = ${context.posted.toString()},
               held = ${heldOf(context).toString()}, version = ${toVersion}, snapshot = ${persisted(write.snapshot)}::jsonb,
               updated_at = ${write.at}
             where id = ${context.walletId} and version = ${write.fromVersion} returning id`;

    if (journals.length) {
      pending.push(tx`insert into journals ${tx(
        journals.map(({ journal, effect }) => ({
          id: journal.id,
          kind: journal.kind,
          asset: journal.asset,
          wallet_id: context.walletId,
          reference: journal.reference ?? null,
          created_at: effect.at,
        })),
        "id", "kind", "asset", "wallet_id", "reference", "created_at",
      )}`);
      pending.push(tx`insert into postings ${tx(
        journals.flatMap(({ journal }) =>
          journal.postings.map((p) => ({ journal_id: journal.id, account: p.account, asset: journal.asset, amount: p.amount.toString() })),
        ),
        "journal_id", "account", "asset", "amount",
      )}`);
    }

    const withdrawals = withdrawalRows(write.effects);
    if (withdrawals.length) {
      pending.push(tx`insert into withdrawals ${tx(withdrawals, "id", "wallet_id", "asset", "amount", "status", "destination", "reason", "created_at", "updated_at")}
        on conflict (id) do update set status = excluded.status, reason = coalesce(excluded.reason, withdrawals.reason), updated_at = excluded.updated_at`);
    }
    const transfers = transferRows(write.effects);
    if (transfers.length) {
      pending.push(tx`insert into transfers ${tx(transfers, "id", "from_wallet_id", "to_wallet_id", "asset", "amount", "status", "reason", "created_at", "updated_at")}
        on conflict (id) do update set status = excluded.status, reason = coalesce(excluded.reason, transfers.reason), updated_at = excluded.updated_at`);
    }

    const events = write.effects.filter((e) => e.type !== "rejected");
    if (events.length) {
      pending.push(tx`insert into outbox ${tx(
        events.map((e) => ({
          id: Bun.randomUUIDv7(),
          aggregate_id: context.walletId,
          type: e.type,
          payload: JSON.parse(encodeForOutbox(e)),
          created_at: e.at,
          saga_pending: e.type === "transfer.reserved" || e.type === "transfer.credited",
        })),
        "id", "aggregate_id", "type", "payload", "created_at", "saga_pending",
      )}`);
    }

    const [inserted, walletRows] = await Promise.all([keysInserted, walletWrite, ...pending]);
    if ((walletRows as unknown[]).length !== 1) throw new FencedError(context.walletId, write.fromVersion);
    if ((inserted as unknown[]).length !== keyRows.length) {
      const got = new Set((inserted as { scope: string; key: string }[]).map((r) => `${r.scope}\u0000${r.key}`));
      throw new KeysTakenError(write.keyed.map((k) => k.idempotency).filter((i) => !got.has(`${i.scope}\u0000${i.key}`)));
    }
    return toVersion;
  });
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
