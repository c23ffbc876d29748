import type { Db } from "../lib/db";
import { paidByProvider } from "../lib/bank-accounts";
import type { Journal } from "../machines/journal";
import type { WalletEffect } from "../machines/wallet.events";
import { heldOf, WALLET_MACHINE_VERSION, walletMachine, type WalletContext } from "../machines/wallet.machine";
import { decode, encode } from "./codec";
import type { Idempotency, Reply } from "./envelope";
import { confirmAbsent } from "./store-errors";

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
  if (!row) await confirmAbsent(db, "wallets", walletId);
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

export { FencedError, KeysTakenError } from "./store-errors";

export interface BatchWrite {
  walletId: string;
  /** The version this actor loaded (0: the wallet has no row yet). */
  fromVersion: number;
  snapshot: WalletSnapshot;
  at: string;
  effects: WalletEffect[];
  keyed: { idempotency: Idempotency; outcome: Reply }[];
}

/** What one commit of several batches found: new versions, or who was fenced and which keys were taken. */
export interface CommitReport {
  ok: boolean;
  versions: Map<string, number>;
  fenced: Set<string>;
  taken: Map<string, Idempotency[]>;
}

/**
 * Everything some batches did (each from a different wallet), in ONE statement and so one
 * transaction: idempotency records, journals and postings, the rows effects describe, outbox events
 * and each wallet's new snapshot, guarded by the version its actor loaded. The SQL is
 * `coffer_commit` (src/db/migrations/002_commit_batch.sql). If any wallet was fenced or any key was
 * already taken, nothing is written and the report says which, so the caller can answer those and
 * commit the rest again.
 */
export async function commitWrites(db: Db, writes: BatchWrite[]): Promise<CommitReport> {
  const journals = writes.flatMap((w) =>
    w.effects.flatMap((e) => ("journal" in e && e.journal ? [{ journal: e.journal, at: e.at, walletId: w.walletId, source: sourceOf(e, e.journal) }] : [])),
  );
  for (const { journal } of journals) assertBalanced(journal);
  assertKeysDistinct(writes);
  const effects = writes.flatMap((w) => w.effects);
  const events = effects.filter((e) => e.type !== "rejected");
  const keys = writes.flatMap((w) =>
    w.keyed.map(({ idempotency, outcome }) => ({
      scope: idempotency.scope,
      key: idempotency.key,
      fingerprint: idempotency.fingerprint,
      status: outcome.status,
      body: outcome.body,
    })),
  );
  const batch = {
    creates: writes.filter((w) => w.fromVersion === 0).map(walletRow),
    updates: writes
      .filter((w) => w.fromVersion > 0)
      .map((u) => ({
        id: u.walletId,
        from_version: u.fromVersion,
        to_version: toVersion(u),
        status: String(u.snapshot.value),
        posted: u.snapshot.context.posted.toString(),
        held: heldOf(u.snapshot.context).toString(),
        snapshot: persistedForm(u.snapshot),
        updated_at: u.at,
      })),
    journals: journals.map(({ journal, at, walletId, source }) => ({
      id: journal.id,
      kind: journal.kind,
      asset: journal.asset,
      wallet_id: walletId,
      reference: journal.reference ?? null,
      source_kind: source.kind,
      source_id: source.id,
      created_at: at,
    })),
    postings: journals.flatMap(({ journal }) =>
      journal.postings.map((p) => ({ journal_id: journal.id, account: p.account, asset: journal.asset, amount: p.amount.toString() })),
    ),
    withdrawals: withdrawalRows(effects),
    transfers: transferRows(effects),
    events: events.map((e) => ({
      id: Bun.randomUUIDv7(),
      aggregate_id: (e as { walletId: string }).walletId,
      type: e.type,
      payload: outboxPayload(e),
      created_at: e.at,
      saga_pending: e.type === "transfer.reserved" || e.type === "transfer.credited",
      payout_pending: needsPayout(e),
    })),
  };

  const report: CommitReport = { ok: true, versions: new Map(), fenced: new Set(), taken: new Map() };
  try {
    // Sent as text and cast, so the driver does not encode them a second time. Keys go as `json`
    // (not jsonb) so each response body keeps its text, for byte-identical replays. Every bigint
    // was made a decimal string above: JSON.stringify without a replacer is much faster.
    await db`select coffer_commit(${JSON.stringify(batch)}::text::jsonb, ${JSON.stringify(keys)}::text::json)`;
  } catch (error) {
    if ((error as { code?: string }).code !== "CF409") throw error;
    const detail = JSON.parse((error as { detail: string }).detail) as { taken: { scope: string; key: string }[]; fenced: string[] };
    report.ok = false;
    for (const id of detail.fenced) report.fenced.add(id);
    const takenIds = new Set(detail.taken.map((t) => `${t.scope}\u0000${t.key}`));
    for (const w of writes) {
      const taken = w.keyed.map((k) => k.idempotency).filter((i) => takenIds.has(`${i.scope}\u0000${i.key}`));
      if (taken.length) report.taken.set(w.walletId, taken);
    }
    return report;
  }
  for (const w of writes) report.versions.set(w.walletId, toVersion(w));
  return report;
}

/**
 * A withdrawal just requested to a destination Stripe holds: marked for the payout worker
 * (src/workers/payout-worker.ts), in the commit that holds its amount. Where Stripe is not
 * configured nothing takes the mark up, and processors step the withdrawal by hand as before.
 */
export function needsPayout(e: WalletEffect): boolean {
  return e.type === "withdrawal.changed" && e.status === "requested" && paidByProvider(e.destination?.masked.type);
}

/** A withdrawal to a crypto network was requested, or an operator released one: the chain pipeline may have work. */
export function needsChainPayout(e: WalletEffect): boolean {
  return e.type === "withdrawal.changed" && e.status === "requested" && e.destination?.masked.type === "crypto";
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
    machine_version: WALLET_MACHINE_VERSION,
    snapshot: persistedForm(w.snapshot),
    created_at: opened?.at ?? w.at,
    updated_at: w.at,
  };
}

/** The snapshot as stored: its bigints tagged (see codec.ts) so they come back as bigints. */
function persistedForm(snapshot: WalletSnapshot): unknown {
  return JSON.parse(encode({ value: snapshot.value, context: snapshot.context } satisfies PersistedWallet));
}

/**
 * Outbox payloads carry amounts as decimal strings of minor units, readable by any consumer, and
 * name their journal rather than repeat its postings. Payout destinations stay in their own row:
 * events travel further than the database does.
 */
export function outboxPayload(effect: object): Record<string, unknown> {
  const { destination: _private, journal, ...rest } = effect as WalletEffect & { destination?: unknown; journal?: Journal };
  // A journal's moved amount is its positive posting; events that carry a journal name it and say how much.
  const payload: Record<string, unknown> = journal ? { amount: journal.postings.find((p) => p.amount > 0n)!.amount, ...rest, journalId: journal.id } : rest;
  for (const [k, v] of Object.entries(payload)) if (typeof v === "bigint") payload[k] = v.toString();
  return payload;
}


/** What callers know a journal by: the credit, payment, deposit, transfer or withdrawal it books. */
export interface JournalSource {
  kind: "credit" | "payment" | "deposit" | "transfer" | "withdrawal";
  id: string;
}

/**
 * The thing a journal belongs to, from the effect that carries it: a step of a transfer, a
 * withdrawal or a deposit books under that object's id (each may book several journals); a credit,
 * a payment or a chama deposit is its own journal, and its caller was answered with the journal's
 * id. A journal of any other kind is its own source, under its own id.
 */
export function sourceOf(effect: object, journal: Journal): JournalSource {
  const e = effect as { transferId?: unknown; withdrawalId?: unknown; depositId?: unknown };
  if (typeof e.transferId === "string") return { kind: "transfer", id: e.transferId };
  if (typeof e.withdrawalId === "string") return { kind: "withdrawal", id: e.withdrawalId };
  if (typeof e.depositId === "string") return { kind: "deposit", id: e.depositId };
  if (journal.kind === "chama_deposit") return { kind: "deposit", id: journal.id };
  return { kind: journal.kind as JournalSource["kind"], id: journal.id };
}

/** One statement cannot both insert a key and see it taken: the queue never groups such batches. */
function assertKeysDistinct(writes: BatchWrite[]): void {
  const seen = new Set<string>();
  for (const w of writes) {
    for (const k of w.keyed) {
      const id = `${k.idempotency.scope}\u0000${k.idempotency.key}`;
      if (seen.has(id)) throw new Error("one idempotency key twice in one commit");
      seen.add(id);
    }
  }
}

export function assertBalanced(journal: Journal): void {
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
      // The receiver: another wallet, or a chama for a member's contribution (exactly one is set).
      to_wallet_id: e.toWalletId ?? null,
      to_chama_id: e.toChamaId ?? null,
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
