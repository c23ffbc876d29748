import type { Reply } from "../../actors/envelope";
import type { Db } from "../../lib/db";
import { isAsset, type Asset } from "../../lib/assets";
import { LruCache } from "../../lib/lru";
import { log, reason } from "../../lib/log";
import { formatAmount } from "../../lib/money";
import type { ChamaService } from "../api/chama-service";
import type { WalletService } from "../api/wallet-service";
import type { Vault } from "../security/encryption";
import { EVERYTHING, type Ownership } from "../workers/ownership";
import { Pump } from "../workers/pump";
import { raise, type Facts, type Firing } from "./alerts";
import { canonicalDestination, historyOf, movementOf, type Movement, type OutboxRow } from "./movements";
import {
  bandsOf,
  type MonitoringRules,
  type RuleBook,
  type RuleName,
  type Severity,
  structuringThresholdOf,
  type SubjectKind,
  WINDOW_MAX_MS,
} from "./rules";

/**
 * Transaction monitoring: every money movement, read from the committed domain events (the outbox)
 * with this worker's own cursor, is checked against the rules (src/monitoring/rules.ts) after its
 * commit, never in the path of the payment itself. What the rules find becomes alerts (one per
 * rule, subject and window); a rule whose outcome is `hold` also parks the withdrawal that fired it
 * in manual review until a platform admin releases or rejects it.
 *
 * One pass, on one node at a time (a Postgres advisory lock): read up to a batch of events after the
 * cursor, in (transaction, seq) order and only from transactions older than every one still running
 * (so no event can ever appear behind the cursor: src/db/migrations/013_monitoring.sql); record each
 * movement in the window counts, evaluate the rules, raise or bump alerts (with their outbox events),
 * note the holds to make and each money object's history, and move the cursor: all in ONE
 * transaction, so an event is evaluated exactly once whatever crashes. Then the holds are sent to
 * the withdrawals' actors (system steps, keyed by withdrawal: a retry after a crash holds once).
 *
 * Holds come after the commit that recorded them, and a payout processor or the Stripe payout worker
 * may take a withdrawal first: a hold that finds the withdrawal already processing (or over) is
 * recorded as `missed` on the alert's hold row, and the alert stays for an admin to look at.
 */
export interface MonitoringOptions {
  /** Events evaluated per pass at most. */
  batch?: number;
  pollMs?: number;
  /** Called once per new alert (Prometheus: src/monitoring/metrics.ts `countAlert`). */
  onAlert?: (severity: Severity) => void;
  /** With several nodes: the background passes run only on the holder of the `monitoring` lease (src/workers/ownership.ts); `settle` runs wherever it is called. */
  ownership?: Ownership;
}

const LOCK_ID = 72_060_014;
const BATCH = 500;
const HOLDS_PER_PASS = 100;
/** How often old window counts are pruned (they are kept for the longest window a rule may have). */
const PRUNE_EVERY_MS = 60_000;

export class MonitoringWorker {
  /** Made by start(): a pump polls from the moment it exists, and with MONITORING=off nothing may run on its own. */
  private pump: Pump | undefined;
  private readonly owners = new LruCache<string, string>(100_000);
  private lastPruneMs = 0;

  constructor(
    private readonly db: Db,
    private readonly rules: RuleBook,
    private readonly vault: Vault,
    private readonly wallets: WalletService,
    private readonly chamas: ChamaService,
    private readonly options: MonitoringOptions = {},
  ) {}

  /** Run in the background (MONITORING=on): on every kick, and every pollMs anyway. */
  start(): void {
    const ownership = this.options.ownership ?? EVERYTHING;
    // Elsewhere the pass would only find the advisory lock taken (or race it): not this node's job.
    this.pump ??= new Pump("monitoring", async () => (ownership.leads("monitoring") ? this.pass() : false), this.options.pollMs ?? 1_000);
    this.pump.kick();
  }

  /** Something was committed: look soon (a no-op until started). */
  kick(): void {
    this.pump?.kick();
  }

  async stop(): Promise<void> {
    await this.pump?.stop();
  }

  /**
   * Passes until every event committed so far has been evaluated and every hold made (tests, and a
   * node with MONITORING=off whose operator runs it by hand); false if that took longer than allowed.
   */
  async settle(timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const more = await this.pass();
      if (!more && (await this.caughtUp())) return true;
      if (!more) await Bun.sleep(10);
    }
    return false;
  }

  /** How far behind the worker is: events committed and not yet evaluated, and the oldest one's age. */
  async lag(): Promise<{ events: number; oldestMs: number | null }> {
    const [row] = await this.db`select count(*)::int as n, extract(epoch from now() - min(o.created_at)) * 1000 as age
      from events o, monitoring_cursor c where (o.xid, o.seq) > (c.xid, c.seq)`;
    return { events: row!.n as number, oldestMs: row!.age === null ? null : Math.max(0, Math.round(Number(row!.age))) };
  }

  private async caughtUp(): Promise<boolean> {
    const [row] = await this.db`select
      (select count(*) from events o, monitoring_cursor c where (o.xid, o.seq) > (c.xid, c.seq))::int as events,
      (select count(*) from monitoring_holds where status = 'pending')::int as holds`;
    return row!.events === 0 && row!.holds === 0;
  }

  /** One pass: a batch of events, then the holds they (or an earlier pass) asked for. True when there may be more. */
  async pass(): Promise<boolean> {
    const { rules } = await this.rules.current();
    const read = await this.db.begin(async (sql) => {
      const [lock] = await sql`select pg_try_advisory_xact_lock(${LOCK_ID}) as mine`;
      if (!lock!.mine) return { events: 0, raised: [] as Severity[] };
      const [cursor] = await sql`select xid::text as xid, seq::text as seq from monitoring_cursor where id = 1`;
      // (Ordered by the columns, not the text aliases: "10" sorts before "9".)
      const rows = (await sql`select seq::text as seq, xid::text as xid, type, aggregate_id, payload, created_at from events
        where (xid, seq) > (${cursor!.xid}::xid8, ${cursor!.seq}::bigint)
          and xid < pg_snapshot_xmin(pg_current_snapshot())
        order by events.xid, events.seq limit ${this.options.batch ?? BATCH}`) as unknown as OutboxRow[];
      const raised: Severity[] = [];
      for (const row of rows) await this.evaluate(sql as unknown as Db, rules, row, raised);
      if (rows.length) {
        const last = rows[rows.length - 1]!;
        await sql`update monitoring_cursor set xid = ${last.xid}::xid8, seq = ${last.seq}::bigint, updated_at = now() where id = 1`;
      }
      return { events: rows.length, raised };
    });
    for (const severity of read.raised) this.options.onAlert?.(severity);
    const holds = await this.makeHolds();
    await this.prune();
    return read.events === (this.options.batch ?? BATCH) || holds === HOLDS_PER_PASS;
  }

  /** One event: its history, and if it moved money, the window counts and the rules. */
  private async evaluate(sql: Db, rules: MonitoringRules, row: OutboxRow, raised: Severity[]): Promise<void> {
    if (row.type.startsWith("alert.")) return; // our own
    const step = historyOf(row);
    let first = true;
    if (step) {
      if (step.type === "withdrawal.changed") {
        const [seen] = await sql`select 1 from transaction_history where object_id = ${step.objectId} limit 1`;
        first = !seen;
      }
      await sql`insert into transaction_history (object_id, seq, type, status, journal_id, at)
        values (${step.objectId}, ${row.seq}::bigint, ${step.type}, ${step.status ?? null}, ${step.journalId ?? null}, ${row.created_at})
        on conflict do nothing`;
    }
    const movement = movementOf(row, first);
    if (!movement || !isAsset(movement.asset)) return;
    if (movement.walletId && !movement.memberId) {
      const owner = await this.ownerOf(sql, movement.walletId);
      if (owner) movement.memberId = owner;
    }
    const subjects = subjectsOf(movement);
    for (const s of subjects) {
      await sql`insert into monitoring_movements (seq, subject_kind, subject_id, kind, asset, amount, at)
        values (${row.seq}::bigint, ${s.kind}, ${s.id}, ${movement.kind}, ${movement.asset}, ${movement.amount.toString()}, ${movement.at})
        on conflict do nothing`;
    }
    const firings = [
      ...(await rapidActivity(sql, rules, movement, subjects)),
      ...unusualAmount(rules, movement, subjects[0]!),
      ...(await structuring(sql, rules, movement, subjects[0]!)),
      ...(await this.newDestination(sql, rules, movement)),
    ];
    const holdingAlerts: string[] = [];
    for (const { firing, hold } of firings) {
      const holds = hold && movement.withdrawal ? movement.withdrawal.id : undefined;
      const result = await raise(sql, { ...firing, ...(holds ? { holds } : {}) });
      if (result.created) raised.push(result.severity);
      if (holds) holdingAlerts.push(result.alertId);
    }
    if (holdingAlerts.length && movement.withdrawal) {
      const w = movement.withdrawal;
      const ownerId = w.of === "wallet" ? movement.walletId! : movement.chamaId!;
      await sql`insert into monitoring_holds (withdrawal_id, kind, owner_id, alert_ids, status, created_at, updated_at)
        values (${w.id}, ${w.of}, ${ownerId}, ${sql.json(holdingAlerts)}, 'pending', now(), now())
        on conflict (withdrawal_id) do update set alert_ids = monitoring_holds.alert_ids || excluded.alert_ids, updated_at = now()`;
    }
  }

  /** The first payout of an owner (a chama for its withdrawals) to a destination, by keyed fingerprint. */
  private async newDestination(sql: Db, rules: MonitoringRules, m: Movement): Promise<Fired[]> {
    const rule = rules.newDestination;
    if (!rule.enabled || !m.withdrawal) return [];
    const table = m.withdrawal.of === "wallet" ? sql`withdrawals` : sql`chama_withdrawals`;
    const [row] = await sql`select destination from ${table} where id = ${m.withdrawal.id}`;
    const sealed = row?.destination?.sealed;
    const destinationType = String(row?.destination?.masked?.type ?? "unknown");
    if (!sealed || destinationType === "wallet") return [];
    let canonical: string | undefined;
    try {
      canonical = canonicalDestination(this.vault.open<Record<string, unknown>>(sealed, m.withdrawal.id));
    } catch (error) {
      log("warn", "monitoring: a withdrawal's destination could not be opened; new-destination not checked", { withdrawalId: m.withdrawal.id, error: reason(error) });
      return [];
    }
    if (!canonical) return [];
    const subject = m.withdrawal.of === "wallet" ? { kind: "owner" as const, id: m.memberId ?? m.walletId! } : { kind: "chama" as const, id: m.chamaId! };
    const fingerprint = this.vault.mac(`monitoring.destination\n${canonical}`);
    const inserted = await sql`insert into monitoring_destinations (subject_kind, subject_id, fingerprint, first_seen_at)
      values (${subject.kind}, ${subject.id}, ${fingerprint}, ${m.at}) on conflict do nothing returning 1`;
    if (!inserted.length) return [];
    const network = row?.destination?.masked?.network;
    return [
      {
        firing: {
          rule: "new_destination",
          severity: rule.severity,
          subject,
          windowMs: rule.windowMs,
          at: m.at,
          facts: { kind: m.kind, asset: m.asset, amount: amountText(m), destinationType, ...(typeof network === "string" ? { network } : {}) },
        },
        hold: rule.outcome === "hold",
      },
    ];
  }

  /** Sends the holds recorded so far to their withdrawals' actors; returns how many it tried. */
  private async makeHolds(): Promise<number> {
    const pending = await this.db`select withdrawal_id, kind, owner_id from monitoring_holds where status = 'pending' order by created_at limit ${HOLDS_PER_PASS}`;
    for (const h of pending) {
      const withdrawalId = h.withdrawal_id as string;
      const key = `monitoring:hold:${withdrawalId}`;
      const at = new Date().toISOString();
      let reply: Reply;
      try {
        reply =
          h.kind === "wallet"
            ? await this.wallets.system(h.owner_id, key, { type: "withdrawal.hold", withdrawalId, reason: "held for review", at })
            : await this.chamas.system(h.owner_id, key, { type: "chama.withdrawal.hold", withdrawalId, note: "held for review by transaction monitoring", at });
      } catch (error) {
        log("warn", "monitoring: a hold could not be sent; will retry", { withdrawalId, error: reason(error) });
        continue;
      }
      if (reply.status >= 500) continue; // the actor's node did not answer: next pass
      const status = reply.status < 300 ? "held" : "missed";
      if (status === "missed") log("warn", "monitoring: a withdrawal to hold was already paying out or over", { withdrawalId, code: String(reply.body.code ?? "") });
      await this.db`update monitoring_holds set status = ${status}, updated_at = now() where withdrawal_id = ${withdrawalId} and status = 'pending'`;
    }
    return pending.length;
  }

  private async prune(): Promise<void> {
    if (Date.now() - this.lastPruneMs < PRUNE_EVERY_MS) return;
    this.lastPruneMs = Date.now();
    await this.db`delete from monitoring_movements where at < ${new Date(Date.now() - WINDOW_MAX_MS)}`;
  }

  private async ownerOf(sql: Db, walletId: string): Promise<string | undefined> {
    const cached = this.owners.get(walletId);
    if (cached) return cached;
    const [row] = await sql`select owner_id from wallets where id = ${walletId}`;
    if (!row) return undefined;
    this.owners.set(walletId, row.owner_id as string);
    return row.owner_id as string;
  }
}

interface Fired {
  firing: Firing;
  hold: boolean;
}

type Subject = { kind: SubjectKind; id: string };

/** Whom a movement counts for: its wallet (or chama) first, then the person behind it. */
function subjectsOf(m: Movement): Subject[] {
  const subjects: Subject[] = [m.chamaId ? { kind: "chama", id: m.chamaId } : { kind: "wallet", id: m.walletId! }];
  if (m.memberId) subjects.push({ kind: "owner", id: m.memberId });
  return subjects;
}

function amountText(m: Movement): string {
  return formatAmount(m.amount, m.asset as Asset);
}

function fired(rule: RuleName, severity: Severity, subject: Subject, windowMs: number, m: Movement, facts: Facts, outcome: "flag" | "hold"): Fired {
  return { firing: { rule, severity, subject, windowMs, at: m.at, facts: { kind: m.kind, ...facts } }, hold: outcome === "hold" };
}

/**
 * More than `max` movements of this kind by the subject within the window (this one included). The
 * window ends at the newest movement seen, not at this one's time: commits can land out of their
 * commands' time order (a retried command keeps its time), and a movement evaluated late must still
 * count the ones already seen, so the count grows by one per movement, whatever the order.
 */
async function rapidActivity(sql: Db, rules: MonitoringRules, m: Movement, subjects: Subject[]): Promise<Fired[]> {
  const rule = rules.rapidActivity;
  if (!rule.enabled || !rule.kinds.includes(m.kind)) return [];
  const out: Fired[] = [];
  for (const s of subjects.filter((s) => rule.scopes.includes(s.kind))) {
    const [row] = await sql`select count(*)::int as n from monitoring_movements
      where subject_kind = ${s.kind} and subject_id = ${s.id} and kind = ${m.kind} and at > ${new Date(m.at.getTime() - rule.windowMs)}`;
    const count = row!.n as number;
    if (count > rule.max) out.push(fired("rapid_activity", rule.severity, s, rule.windowMs, m, { count, max: rule.max, windowMs: rule.windowMs, scope: s.kind }, rule.outcome));
  }
  return out;
}

/** Below the asset's `low`, at or above `high`, at or above `veryHigh`: severity low, medium, high. */
function unusualAmount(rules: MonitoringRules, m: Movement, subject: Subject): Fired[] {
  const rule = rules.unusualAmount;
  const bands = bandsOf(rules, m.asset);
  if (!rule.enabled || !bands || !rule.kinds.includes(m.kind)) return [];
  const asset = m.asset as Asset;
  const band: [Severity, string, bigint] | undefined =
    m.amount >= bands.veryHigh
      ? ["high", "veryHigh", bands.veryHigh]
      : m.amount >= bands.high
        ? ["medium", "high", bands.high]
        : m.amount < bands.low
          ? ["low", "low", bands.low]
          : undefined;
  if (!band) return [];
  const [severity, name, threshold] = band;
  return [fired("unusual_amount", severity, subject, rule.windowMs, m, { asset, amount: amountText(m), band: name, threshold: formatAmount(threshold, asset) }, rule.outcome)];
}

/** `count` amounts just under the asset's threshold by the subject within the window (this one included; the window as rapid activity's). */
async function structuring(sql: Db, rules: MonitoringRules, m: Movement, subject: Subject): Promise<Fired[]> {
  const rule = rules.structuring;
  const threshold = structuringThresholdOf(rules, m.asset);
  if (!rule.enabled || threshold === undefined || !rule.kinds.includes(m.kind)) return [];
  const floor = (threshold * BigInt(100 - rule.marginPercent) + 99n) / 100n;
  if (m.amount < floor || m.amount >= threshold) return [];
  const [row] = await sql`select count(*)::int as n from monitoring_movements
    where subject_kind = ${subject.kind} and subject_id = ${subject.id} and kind = any(${sql.array(rule.kinds)}::text[])
      and asset = ${m.asset} and amount >= ${floor.toString()}::numeric and amount < ${threshold.toString()}::numeric
      and at > ${new Date(m.at.getTime() - rule.windowMs)}`;
  const count = row!.n as number;
  if (count < rule.count) return [];
  const asset = m.asset as Asset;
  return [
    fired(
      "structuring",
      rule.severity,
      subject,
      rule.windowMs,
      m,
      { asset, count, threshold: formatAmount(threshold, asset), from: formatAmount(floor, asset), windowMs: rule.windowMs },
      rule.outcome,
    ),
  ];
}
