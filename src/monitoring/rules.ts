import { z } from "zod";
import { ASSET_SCALE, isAsset, type Asset } from "../../lib/assets";
import type { Db } from "../../lib/db";

/**
 * Transaction monitoring's rules and thresholds: configuration, not code. Built-in defaults (below),
 * replaced whole by MONITORING_RULES_FILE when it is set, and by what an admin last PUT at
 * /admin/monitoring/rules (kept in Postgres, so every node reads the same rules; each change
 * audited). Every rule can be switched off, and each says what firing does: `flag` (an alert) or
 * `hold` (an alert, and the withdrawal that fired it waits in manual review for an admin).
 *
 * Four rules, evaluated on every money movement from the committed events (src/monitoring/worker.ts):
 * - rapid activity: more than `max` movements of one kind by one subject (a wallet, its owner, a
 *   chama) within `windowMs` (the seed's 3 in 5 minutes): the movement that makes it `max + 1` fires;
 * - unusual amount: per asset, below `low` (severity low), at or above `high` (medium), at or above
 *   `veryHigh` (high);
 * - new destination: the first payout of an owner (or a chama) to a destination, by its keyed
 *   fingerprint;
 * - structuring: `count` amounts within `windowMs` (24 h) each at most `marginPercent` under a
 *   threshold (the asset's `high` unless given): the `count`-th fires.
 */
export const MOVEMENT_KINDS = ["credit", "payment", "deposit", "withdrawal", "transfer", "chama_deposit", "chama_withdrawal"] as const;
export type MovementKind = (typeof MOVEMENT_KINDS)[number];
export const SUBJECT_KINDS = ["wallet", "owner", "chama"] as const;
export type SubjectKind = (typeof SUBJECT_KINDS)[number];
export const SEVERITIES = ["low", "medium", "high"] as const;
export type Severity = (typeof SEVERITIES)[number];
export const RULE_NAMES = ["rapid_activity", "unusual_amount", "new_destination", "structuring"] as const;
export type RuleName = (typeof RULE_NAMES)[number];
/**
 * Alerts the chain payout pipeline raises about itself (src/integrations/chain/alerts.ts), beside the
 * movement rules: a hot wallet that cannot cover what is waiting (its network paused), a payout
 * pending on chain too long, a nonce someone else used from a hot wallet.
 */
export const OPERATIONAL_ALERTS = ["hot_wallet_runway", "payout_pending", "nonce_drift"] as const;
export const ALERT_RULES = [...RULE_NAMES, ...OPERATIONAL_ALERTS] as const;
export type AlertRule = (typeof ALERT_RULES)[number];
/** Whom an alert is about: the movement rules' subjects, and a network or a payout (withdrawal id) for operational ones. */
export const ALERT_SUBJECT_KINDS = [...SUBJECT_KINDS, "network", "payout"] as const;
export type AlertSubjectKind = (typeof ALERT_SUBJECT_KINDS)[number];

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** The longest window any rule may have: what the movements table keeps. */
export const WINDOW_MAX_MS = 31 * DAY_MS;

const Outcome = z.enum(["flag", "hold"]).describe("flag: an alert; hold: an alert, and the withdrawal that fired it waits in manual review");
const Severity = z.enum(SEVERITIES);
const Kinds = z.array(z.enum(MOVEMENT_KINDS)).min(1).max(MOVEMENT_KINDS.length).refine((k) => new Set(k).size === k.length, "kinds must not repeat");
const Window = z.number().int().min(1_000).max(WINDOW_MAX_MS).describe("milliseconds");
const DECIMAL = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;
/** An amount in major units ("1000.00"), checked against each asset's decimals below. */
const Decimal = z.string().max(60).regex(DECIMAL, "a decimal amount in major units, like \"1000.00\"");
const Bands = z.strictObject({ low: Decimal, high: Decimal, veryHigh: Decimal });

export const MonitoringRules = z
  .strictObject({
    rapidActivity: z.strictObject({
      enabled: z.boolean(),
      outcome: Outcome,
      severity: Severity,
      /** More than this many movements of a kind in the window fires. */
      max: z.number().int().min(1).max(10_000),
      windowMs: Window,
      kinds: Kinds,
      scopes: z.array(z.enum(SUBJECT_KINDS)).min(1).max(SUBJECT_KINDS.length),
    }),
    unusualAmount: z.strictObject({
      enabled: z.boolean(),
      outcome: Outcome,
      /** One alert per subject and window; more unusual amounts inside it bump its count. */
      windowMs: Window,
      kinds: Kinds,
      /** Per asset, in major units. An asset not listed is not checked. */
      thresholds: z.record(z.string().max(16), Bands),
    }),
    newDestination: z.strictObject({
      enabled: z.boolean(),
      outcome: Outcome,
      severity: Severity,
      windowMs: Window,
    }),
    structuring: z.strictObject({
      enabled: z.boolean(),
      outcome: Outcome,
      severity: Severity,
      /** This many just-under amounts within the window fires (the count-th one). */
      count: z.number().int().min(2).max(1_000),
      windowMs: Window,
      /** "Just under": at least threshold × (100 − marginPercent) / 100 and below the threshold. */
      marginPercent: z.number().int().min(1).max(50),
      kinds: Kinds,
      /** Per asset, in major units; an asset not listed uses unusualAmount's `high`. */
      thresholds: z.record(z.string().max(16), Decimal),
    }),
  })
  .superRefine((rules, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    for (const [asset, bands] of Object.entries(rules.unusualAmount.thresholds)) {
      const at = ["unusualAmount", "thresholds", asset];
      if (!isAsset(asset)) {
        issue(at, "not an asset Coffer holds");
        continue;
      }
      // (A band that is not a decimal at all has its own issue from the field's schema.)
      if (!bands || typeof bands !== "object" || !(["low", "high", "veryHigh"] as const).every((band) => typeof bands[band] === "string" && DECIMAL.test(bands[band]))) continue;
      const parsed = (["low", "high", "veryHigh"] as const).map((band) => minorOf(bands[band], asset));
      parsed.forEach((v, i) => v === undefined && issue([...at, ["low", "high", "veryHigh"][i]!], `more decimals than ${asset} has (${ASSET_SCALE[asset]})`));
      const [low, high, veryHigh] = parsed;
      if (low !== undefined && high !== undefined && veryHigh !== undefined && !(low < high && high <= veryHigh)) issue(at, "low < high ≤ veryHigh");
    }
    for (const [asset, threshold] of Object.entries(rules.structuring.thresholds)) {
      const at = ["structuring", "thresholds", asset];
      if (!isAsset(asset)) issue(at, "not an asset Coffer holds");
      else if (typeof threshold === "string" && DECIMAL.test(threshold) && !minorOf(threshold, asset)) issue(at, `a positive amount with at most ${ASSET_SCALE[asset]} decimals`);
    }
  });

export type MonitoringRules = z.infer<typeof MonitoringRules>;

/**
 * The seed's unusual-amount thresholds (`CRYPTO_MIN_ALERT_THRESHOLD` 100, `…_HIGH_…` 1,000,000 and
 * `…_VERY_HIGH_…` 5,000,000, in NGN) taken to each asset at a rough rate and rounded, in major units;
 * each is scaled to the asset's smallest unit by its own decimals when the rules are read.
 */
const DEFAULT_BANDS: Record<string, z.infer<typeof Bands>> = {
  USD: { low: "0.10", high: "1000.00", veryHigh: "5000.00" },
  EUR: { low: "0.10", high: "1000.00", veryHigh: "5000.00" },
  KES: { low: "10.00", high: "100000.00", veryHigh: "500000.00" },
  USDC: { low: "0.10", high: "1000", veryHigh: "5000" },
  BTC: { low: "0.000001", high: "0.01", veryHigh: "0.05" },
  ETH: { low: "0.00003", high: "0.3", veryHigh: "1.5" },
  SOL: { low: "0.0007", high: "7", veryHigh: "35" },
  NEAR: { low: "0.03", high: "300", veryHigh: "1500" },
  TON: { low: "0.03", high: "300", veryHigh: "1500" },
};

export const DEFAULT_RULES: MonitoringRules = {
  rapidActivity: {
    enabled: true,
    outcome: "flag",
    severity: "high",
    max: 3,
    windowMs: 5 * MINUTE_MS,
    kinds: ["payment", "withdrawal", "transfer", "chama_withdrawal"],
    scopes: ["wallet", "owner"],
  },
  unusualAmount: {
    enabled: true,
    outcome: "flag",
    windowMs: DAY_MS,
    kinds: ["payment", "withdrawal", "transfer", "deposit", "credit", "chama_withdrawal"],
    thresholds: Object.fromEntries(Object.entries(DEFAULT_BANDS).filter(([asset]) => isAsset(asset))),
  },
  newDestination: { enabled: true, outcome: "flag", severity: "low", windowMs: DAY_MS },
  structuring: {
    enabled: true,
    outcome: "flag",
    severity: "medium",
    count: 3,
    windowMs: DAY_MS,
    marginPercent: 10,
    kinds: ["payment", "withdrawal", "transfer", "deposit", "chama_withdrawal"],
    thresholds: {},
  },
};

/** A decimal in an asset's smallest unit; undefined when it has more decimals than the asset. */
export function minorOf(decimal: string, asset: Asset): bigint | undefined {
  if (!/^(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(decimal)) return undefined;
  const [whole, fraction = ""] = decimal.split(".");
  const scale = ASSET_SCALE[asset];
  if (fraction.length > scale) return undefined;
  return BigInt(whole! + fraction.padEnd(scale, "0"));
}

/** The unusual-amount bands of an asset in its smallest unit, or undefined when the asset is not checked. */
export function bandsOf(rules: MonitoringRules, asset: string): { low: bigint; high: bigint; veryHigh: bigint } | undefined {
  const bands = rules.unusualAmount.thresholds[asset];
  if (!bands || !isAsset(asset)) return undefined;
  return { low: minorOf(bands.low, asset)!, high: minorOf(bands.high, asset)!, veryHigh: minorOf(bands.veryHigh, asset)! };
}

/** The structuring threshold of an asset in its smallest unit (its own, else unusualAmount's `high`). */
export function structuringThresholdOf(rules: MonitoringRules, asset: string): bigint | undefined {
  if (!isAsset(asset)) return undefined;
  const own = rules.structuring.thresholds[asset];
  return own !== undefined ? minorOf(own, asset) : bandsOf(rules, asset)?.high;
}

/** Reads and checks a rules file: the whole configuration, or the process stops with what is wrong. */
export async function rulesFromFile(path: string): Promise<MonitoringRules> {
  const text = await Bun.file(path).text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`MONITORING_RULES_FILE ${path}: not JSON`);
  }
  const parsed = MonitoringRules.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`MONITORING_RULES_FILE ${path}: ${issues}`);
  }
  return parsed.data;
}

/** The rules in force and where they come from. */
export interface RulesInForce {
  rules: MonitoringRules;
  source: "default" | "file" | "admin";
  /** 0 until an admin changed them; then each change adds one. */
  version: number;
  updatedBy?: string;
  updatedAt?: string;
}

/**
 * Where the rules are read: the row an admin's change wrote, else the configured base (the file's
 * or the defaults). Read once per pass by the worker (one row by primary key).
 */
export class RuleBook {
  constructor(
    private readonly db: Db,
    private readonly base: MonitoringRules,
    private readonly baseSource: "default" | "file",
  ) {}

  async current(sql: Db = this.db): Promise<RulesInForce> {
    const [row] = await sql`select rules, version, updated_by, updated_at from monitoring_rules where id = 1`;
    if (!row) return { rules: this.base, source: this.baseSource, version: 0 };
    const parsed = MonitoringRules.safeParse(row.rules);
    // A row a newer node wrote in a shape this one does not know: keep to the configured base.
    if (!parsed.success) return { rules: this.base, source: this.baseSource, version: Number(row.version) };
    return { rules: parsed.data, source: "admin", version: Number(row.version), updatedBy: row.updated_by, updatedAt: (row.updated_at as Date).toISOString() };
  }

  /** Replaces the rules (an admin's PUT), auditing before and after, in the caller's transaction. */
  async replace(sql: Db, rules: MonitoringRules, actor: string, note: string | undefined, at: Date): Promise<RulesInForce> {
    await sql`select pg_advisory_xact_lock(${RULES_LOCK_ID})`;
    const before = await this.current(sql);
    const version = before.version + 1;
    await sql`insert into monitoring_rules (id, rules, version, updated_by, updated_at) values (1, ${sql.json(rules as never)}, ${version}, ${actor}, ${at})
      on conflict (id) do update set rules = excluded.rules, version = excluded.version, updated_by = excluded.updated_by, updated_at = excluded.updated_at`;
    await sql`insert into monitoring_rules_audit (version, actor, before, after, note, at)
      values (${version}, ${actor}, ${sql.json(before.rules as never)}, ${sql.json(rules as never)}, ${note ?? null}, ${at})`;
    return { rules, source: "admin", version, updatedBy: actor, updatedAt: at.toISOString() };
  }
}

const RULES_LOCK_ID = 72_060_013;

