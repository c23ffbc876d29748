import type { Queryable } from "../lib/db";
import type { Journal } from "../machines/journal";
import type { ActorWrite, AnyEffect } from "./actor-kind";
import { idempotencyId, type Idempotency } from "./envelope";

/**
 * THE write path: everything any aggregate (a wallet, a chama, a deposit) commits goes to Postgres
 * through `commitWrites`, as ONE statement per group commit: `coffer_commit`
 * (src/db/migrations/021_one_write_path.sql). Idempotency records, the aggregate's row guarded by
 * the version its actor loaded, the ledger's movements, the rows SQL reads, and outbox events. The
 * chain pipeline's fee journals (no aggregate) go through `commitLedger`, the same function.
 *
 * What differs by kind is only which rows its batch adds; each kind says so in an `AggregateRows`
 * (actors/wallet-store.ts, chama-store.ts, deposit-store.ts).
 */

/** The tables of `coffer_commit`'s batch a kind may add rows to (besides its aggregate row). */
export type RowTable =
  | "withdrawals"
  | "transfers"
  | "chama_members"
  | "chama_withdrawals"
  | "chama_reviews"
  | "chama_audit"
  | "deposit_refunds"
  | "deposit_disputes";

/** An outbox event's worker marks (which background worker must act on it). */
export type OutboxMarks = Partial<Record<"saga_pending" | "payout_pending" | "deposit_pending", boolean>>;

/** What one kind of aggregate writes, besides what every kind writes the same way. */
export interface AggregateRows {
  /** The key of the batch its aggregate rows go under (and its table, in the SQL). */
  table: "wallets" | "chamas" | "deposits";
  /** The aggregate's own row (snapshot and projections); `toVersion` is what it commits as. */
  aggregate(write: ActorWrite, toVersion: number): Record<string, unknown>;
  /** The other rows its effects describe (amounts as decimal strings). */
  rows(write: ActorWrite): Partial<Record<RowTable, Record<string, unknown>[]>>;
  /** Which effects become outbox events, and their marks; undefined leaves an effect out. */
  event(effect: AnyEffect): OutboxMarks | undefined;
}

/** One actor's batch, ready for the group commit: what it did, and what kind of aggregate it is. */
export interface AggregateWrite extends ActorWrite {
  kind: AggregateRows;
}

/** What one commit of several batches found: new versions, or who was fenced and which keys were taken. */
export interface CommitReport {
  ok: boolean;
  versions: Map<string, number>;
  fenced: Set<string>;
  taken: Map<string, Idempotency[]>;
}

/** What callers know a journal by: the credit, payment, deposit, transfer or withdrawal it books. */
export interface JournalSource {
  kind: "credit" | "payment" | "deposit" | "transfer" | "withdrawal";
  id: string;
}

/** A journal to book, with what it belongs to. */
export interface Booking {
  journal: Journal;
  /** The aggregate (or, for fee journals, the hot wallet row) the journal is listed under. */
  walletId: string;
  source: JournalSource;
  at: string;
}

/**
 * A batch that only refused things (and records those refusals under their keys) leaves the
 * aggregate as it was: the version is checked (fencing) but not moved.
 */
export function toVersion(w: ActorWrite): number {
  return w.effects.length ? w.fromVersion + 1 : w.fromVersion;
}

/**
 * A commit lane's order check (actors/commit-queue.ts): the statement writes only if the lane's
 * connection holds `expect` (the token the statement sent before it set), and sets `token`.
 */
export interface LaneGuard {
  expect: string | undefined;
  token: string;
}

/** SQLSTATE of a lane statement refused by its guard: the one before it did not commit (migration 031). */
export const LANE_OUT_OF_STEP = "CF412";

/**
 * Everything some batches did (each from a different aggregate), in ONE statement and so one
 * transaction. If any aggregate was fenced or any key was already taken, nothing is written and the
 * report says which, so the caller can answer those and commit the rest again. On a commit lane
 * (`lane`), the statement carries the lane's guard and sends at once, before this returns to its
 * caller's next statement.
 */
export async function commitWrites(db: Queryable, writes: AggregateWrite[], lane?: LaneGuard): Promise<CommitReport> {
  assertKeysDistinct(writes);
  const batch: Record<string, unknown> = {};
  const add = (table: string, rows: unknown[]) => {
    if (rows.length) ((batch[table] ??= []) as unknown[]).push(...rows);
  };
  // Movements and outbox events, numbered in the order of the effects (the SQL gives them their
  // seqs in that order). An effect that books a journal and asks no worker for anything is ONE
  // row: its movement carries the event. Otherwise the event is an outbox row with its marks.
  const movements: Record<string, unknown>[] = [];
  const events: Record<string, unknown>[] = [];
  let n = 0;
  for (const w of writes) {
    add(w.kind.table, [w.kind.aggregate(w, toVersion(w))]);
    for (const [table, rows] of Object.entries(w.kind.rows(w))) add(table, rows!);
    for (const e of w.effects as (AnyEffect & { at: string; journal?: Journal })[]) {
      const marks = e.type === "rejected" ? undefined : w.kind.event(e);
      const event = marks ? { id: Bun.randomUUIDv7(), type: e.type, payload: outboxPayload(e) } : undefined;
      const folded = event !== undefined && e.journal !== undefined && !Object.values(marks!).some(Boolean);
      if (e.journal) {
        const legs = movementRows({ journal: e.journal, walletId: w.id, source: sourceOf(e, e.journal), at: e.at });
        legs.forEach((leg, i) => movements.push({ n: ++n, ...leg, ...(folded && i === 0 ? { event_id: event.id, event_type: event.type, event_payload: event.payload } : {}) }));
      }
      if (event && !folded) events.push({ n: ++n, id: event.id, aggregate_id: w.id, type: event.type, payload: event.payload, created_at: e.at, ...marks });
    }
  }
  add("movements", movements);
  add("events", events);
  if (n) (batch as Record<string, unknown>).ordered = n;
  const keys = writes.flatMap((w) =>
    w.keyed.map(({ idempotency, outcome }) => ({
      scope: idempotency.scope,
      key: idempotency.key,
      fingerprint: idempotency.fingerprint,
      status: outcome.status,
      body: outcome.body,
    })),
  );

  const report: CommitReport = { ok: true, versions: new Map(), fenced: new Set(), taken: new Map() };
  try {
    await send(db, batch, keys, lane);
  } catch (error) {
    if ((error as { code?: string }).code !== "CF409") throw error;
    const detail = JSON.parse((error as { detail: string }).detail) as { taken: { scope: string; key: string }[]; fenced: string[] };
    report.ok = false;
    for (const id of detail.fenced) report.fenced.add(id);
    const takenIds = new Set(detail.taken.map((t) => `${t.scope}\u0000${t.key}`));
    for (const w of writes) {
      const taken = w.keyed.map((k) => k.idempotency).filter((i) => takenIds.has(`${i.scope}\u0000${i.key}`));
      if (taken.length) report.taken.set(w.id, taken);
    }
    return report;
  }
  for (const w of writes) report.versions.set(w.id, toVersion(w));
  return report;
}

/** Journals with no aggregate (the chain pipeline's network fees), through the same function; run it inside the caller's transaction. */
export async function commitLedger(db: Queryable, bookings: Booking[]): Promise<void> {
  const movements = bookings.flatMap((b) => movementRows(b)).map((m, i) => ({ n: i + 1, ...m }));
  await send(db, { movements, ordered: movements.length }, []);
}

/**
 * The one statement. Sent as text and cast, so the driver does not encode it a second time; keys
 * go as `json` (not jsonb) so each response body keeps its text, for byte-identical replays.
 * Bigints anywhere in the batch become decimal strings. On a lane, the same function behind the
 * lane's guard (migration 031), in the statement's own transaction.
 */
async function send(db: Queryable, batch: object, keys: object[], lane?: LaneGuard): Promise<void> {
  const [batchText, keysText] = [stringify(batch), JSON.stringify(keys)];
  if (lane) await db`select coffer_commit_on_lane(${batchText}::text::jsonb, ${keysText}::text::json, ${lane.expect ?? null}::text, ${lane.token}::text)`;
  else await db`select coffer_commit(${batchText}::text::jsonb, ${keysText}::text::json)`;
}

/** JSON text with bigints as decimal strings. The rows are built with strings already; a replacer (much slower) only when one slipped through. */
function stringify(batch: object): string {
  try {
    return JSON.stringify(batch);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return JSON.stringify(batch, bigintsAsStrings);
  }
}

function bigintsAsStrings(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/**
 * The ledger rows of a booking: its journal as movements, one row per amount moved from one
 * account to another (migration 021). A journal of two postings (every one Coffer makes) is one
 * movement; one of more is split into legs, each debit paired with credits in order. Every
 * journal must balance.
 */
function movementRows({ journal, walletId, source, at }: Booking) {
  assertBalanced(journal);
  const rows: Record<string, unknown>[] = [];
  const debits = journal.postings.filter((p) => p.amount < 0n).map((p) => ({ account: p.account, left: -p.amount }));
  const credits = journal.postings.filter((p) => p.amount > 0n).map((p) => ({ account: p.account, left: p.amount }));
  for (let d = 0, c = 0; d < debits.length && c < credits.length; ) {
    const amount = debits[d]!.left < credits[c]!.left ? debits[d]!.left : credits[c]!.left;
    rows.push({
      journal_id: journal.id,
      leg: rows.length,
      kind: journal.kind,
      asset: journal.asset,
      wallet_id: walletId,
      reference: journal.reference ?? null,
      source_kind: source.kind,
      source_id: source.id,
      debit: debits[d]!.account,
      credit: credits[c]!.account,
      amount: amount.toString(),
      created_at: at,
    });
    debits[d]!.left -= amount;
    credits[c]!.left -= amount;
    if (debits[d]!.left === 0n) d++;
    if (credits[c]!.left === 0n) c++;
  }
  return rows;
}

/**
 * Outbox payloads carry amounts as decimal strings of minor units, readable by any consumer, and
 * name their journal rather than repeat its postings. Payout destinations stay in their own row:
 * events travel further than the database does.
 */
export function outboxPayload(effect: object): Record<string, unknown> {
  const { destination: _private, journal, ...rest } = effect as { destination?: unknown; journal?: Journal };
  // A journal's moved amount is its positive posting; events that carry a journal name it and say how much.
  const payload: Record<string, unknown> = journal ? { amount: journal.postings.find((p) => p.amount > 0n)!.amount, ...rest, journalId: journal.id } : rest;
  for (const [k, v] of Object.entries(payload)) if (typeof v === "bigint") payload[k] = v.toString();
  return payload;
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

export function assertBalanced(journal: Journal): void {
  let sum = 0n;
  for (const p of journal.postings) {
    if (p.amount === 0n) throw new Error(`journal ${journal.id} has a posting of zero`);
    sum += p.amount;
  }
  if (sum !== 0n || journal.postings.length < 2) throw new Error(`journal ${journal.id} does not balance`);
}

/** One statement cannot both insert a key and see it taken: the queue never groups such batches. */
function assertKeysDistinct(writes: AggregateWrite[]): void {
  const seen = new Set<string>();
  for (const w of writes) {
    for (const k of w.keyed) {
      const id = idempotencyId(k.idempotency);
      if (seen.has(id)) throw new Error("one idempotency key twice in one commit");
      seen.add(id);
    }
  }
}
