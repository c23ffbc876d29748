import type { JSONValue } from "postgres";
import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import { SEVERITIES, type AlertRule, type AlertSubjectKind, type Severity } from "./rules";

/**
 * Alerts: what monitoring found, one row per (rule, subject, window). A rule that fires again for the
 * same subject inside the window of its alert bumps that alert's count (and raises its severity)
 * instead of making another, so a burst of a hundred payments is one alert, not a hundred.
 *
 * Their life: open → investigating → resolved | dismissed (open may go straight to resolved or
 * dismissed); each review names its reviewer, time and note, and is kept. Every raise and every
 * review is also a domain event on the outbox (`alert.raised`, `alert.reviewed`), written in the
 * same transaction as the row.
 */
export const ALERT_STATUSES = ["open", "investigating", "resolved", "dismissed"] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

const NEXT: Record<AlertStatus, readonly AlertStatus[]> = {
  open: ["investigating", "resolved", "dismissed"],
  investigating: ["resolved", "dismissed"],
  resolved: [],
  dismissed: [],
};

export function reviewAllowed(from: AlertStatus, to: AlertStatus): boolean {
  return NEXT[from].includes(to);
}

/** Redacted facts: amounts as decimals, counts, windows, kinds. Never a destination. */
export type Facts = Record<string, string | number | boolean>;

export interface Firing {
  rule: AlertRule;
  severity: Severity;
  subject: { kind: AlertSubjectKind; id: string };
  windowMs: number;
  facts: Facts;
  at: Date;
  /** The withdrawal this firing holds (its rule's outcome is `hold` and the movement is a payout request). */
  holds?: string;
}

export interface Raised {
  alertId: string;
  /** A new alert (not a bump of one already open in its window). */
  created: boolean;
  severity: Severity;
}

const rank = (s: string) => SEVERITIES.indexOf(s as Severity);

/**
 * Records a firing in the caller's transaction (the monitoring worker's, which holds the only
 * writer's lock): a new alert with its `alert.raised` event, or a bump of the subject's alert whose
 * window covers the firing.
 */
export async function raise(sql: Db, f: Firing): Promise<Raised> {
  // The alert whose window covers the firing; a firing a little before a window's start (a commit that
  // landed out of its command's time order) belongs to that window too, rather than opening an overlapping one.
  const [current] = await sql`select id, severity from monitoring_alerts
    where rule = ${f.rule} and subject_kind = ${f.subject.kind} and subject_id = ${f.subject.id}
      and window_end > ${f.at} and window_start - (window_end - window_start) < ${f.at}
    order by window_end desc limit 1`;
  const held = f.holds ? [f.holds] : [];
  if (current) {
    const severity = rank(f.severity) > rank(current.severity) ? f.severity : (current.severity as Severity);
    await sql`update monitoring_alerts set count = count + 1, severity = ${severity}, facts = ${sql.json(f.facts as JSONValue)},
        held = held || ${sql.json(held)}::jsonb, first_at = least(first_at, ${f.at}), last_at = greatest(last_at, ${f.at}), updated_at = now()
      where id = ${current.id}`;
    return { alertId: current.id as string, created: false, severity };
  }
  const id = Bun.randomUUIDv7();
  const windowEnd = new Date(f.at.getTime() + f.windowMs);
  await sql`insert into monitoring_alerts (id, rule, severity, subject_kind, subject_id, window_start, window_end, status, count, facts, held, first_at, last_at, created_at, updated_at)
    values (${id}, ${f.rule}, ${f.severity}, ${f.subject.kind}, ${f.subject.id}, ${f.at}, ${windowEnd}, 'open', 1, ${sql.json(f.facts as JSONValue)}, ${sql.json(held)}, ${f.at}, ${f.at}, now(), now())`;
  await sql`insert into outbox (id, aggregate_id, type, payload, created_at) values (${Bun.randomUUIDv7()}, ${id}, 'alert.raised', ${sql.json({
    alertId: id,
    rule: f.rule,
    severity: f.severity,
    subjectKind: f.subject.kind,
    subjectId: f.subject.id,
    windowStart: f.at.toISOString(),
    windowEnd: windowEnd.toISOString(),
    facts: f.facts,
  } as JSONValue)}, ${f.at})`;
  return { alertId: id, created: true, severity: f.severity };
}

export interface AlertRow {
  id: string;
  rule: string;
  severity: string;
  subject_kind: string;
  subject_id: string;
  window_start: Date;
  window_end: Date;
  status: string;
  count: number;
  facts: Facts;
  held: string[];
  first_at: Date;
  last_at: Date;
  reviewed_by: string | null;
  reviewed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export function alertView(a: AlertRow) {
  return {
    id: a.id,
    rule: a.rule,
    severity: a.severity,
    status: a.status,
    subject: { kind: a.subject_kind, id: a.subject_id },
    window: { start: a.window_start.toISOString(), end: a.window_end.toISOString() },
    count: a.count,
    facts: a.facts,
    held: a.held,
    firstAt: a.first_at.toISOString(),
    lastAt: a.last_at.toISOString(),
    ...(a.reviewed_by ? { reviewedBy: a.reviewed_by } : {}),
    ...(a.reviewed_at ? { reviewedAt: a.reviewed_at.toISOString() } : {}),
    createdAt: a.created_at.toISOString(),
    updatedAt: a.updated_at.toISOString(),
  };
}

const COLUMNS = "id, rule, severity, subject_kind, subject_id, window_start, window_end, status, count, facts, held, first_at, last_at, reviewed_by, reviewed_at, created_at, updated_at";

/** Alerts newest first, by status and severity, a page at a time (the cursor is the last id seen). */
export async function listAlerts(db: Db, q: { status?: string | undefined; severity?: string | undefined; pageSize: number; cursor?: string | undefined }) {
  const filters = [
    q.status ? db`status = ${q.status}` : db`true`,
    q.severity ? db`severity = ${q.severity}` : db`true`,
  ];
  const rows = (await db`select ${db.unsafe(COLUMNS)} from monitoring_alerts
    where ${filters[0]!} and ${filters[1]!}
      ${q.cursor ? db`and (created_at, id) < (select created_at, id from monitoring_alerts where id = ${q.cursor})` : db``}
    order by created_at desc, id desc limit ${q.pageSize + 1}`) as unknown as AlertRow[];
  const page = rows.slice(0, q.pageSize);
  return { items: page.map(alertView), nextCursor: rows.length > q.pageSize ? page[page.length - 1]!.id : null };
}

export async function getAlert(db: Db, alertId: string) {
  const [row] = (await db`select ${db.unsafe(COLUMNS)} from monitoring_alerts where id = ${alertId}`) as unknown as AlertRow[];
  if (!row) throw new CofferError("NOT_FOUND", "alert not found");
  const reviews = await db`select reviewer, from_status, to_status, note, at from monitoring_alert_reviews where alert_id = ${alertId} order by seq limit 200`;
  return {
    ...alertView(row),
    reviews: reviews.map((r) => ({ reviewer: r.reviewer as string, from: r.from_status as string, to: r.to_status as string, ...(r.note ? { note: r.note as string } : {}), at: (r.at as Date).toISOString() })),
  };
}

/**
 * One review: a legal move of the alert's status (409 INVALID_TRANSITION otherwise), with who made
 * it, when and why; and its `alert.reviewed` event. In the caller's transaction (exactly once per
 * idempotency key: src/api/exactly-once.ts).
 */
export async function reviewAlert(sql: Db, alertId: string, to: AlertStatus, reviewer: string, note: string | undefined, at: Date) {
  const [row] = await sql`select status from monitoring_alerts where id = ${alertId} for update`;
  if (!row) throw new CofferError("NOT_FOUND", "alert not found");
  const from = row.status as AlertStatus;
  if (!reviewAllowed(from, to)) throw new CofferError("INVALID_TRANSITION", `an alert that is ${from} cannot become ${to}`);
  await sql`update monitoring_alerts set status = ${to}, reviewed_by = ${reviewer}, reviewed_at = ${at}, updated_at = ${at} where id = ${alertId}`;
  await sql`insert into monitoring_alert_reviews (alert_id, reviewer, from_status, to_status, note, at) values (${alertId}, ${reviewer}, ${from}, ${to}, ${note ?? null}, ${at})`;
  await sql`insert into outbox (id, aggregate_id, type, payload, created_at) values (${Bun.randomUUIDv7()}, ${alertId}, 'alert.reviewed', ${sql.json({
    alertId,
    from,
    status: to,
    reviewer,
  } as JSONValue)}, ${at})`;
  return getAlert(sql, alertId);
}
