import { z } from "zod";
import { ASSETS } from "../../lib/assets";
import { Money } from "../api/outputs";
import { ALERT_STATUSES } from "../monitoring/alerts";
import { ALERT_RULES, ALERT_SUBJECT_KINDS, MonitoringRules, SEVERITIES } from "../monitoring/rules";
import { TRANSACTION_KINDS } from "./transactions";

/**
 * What the admin API answers (alerts, monitoring rules, transactions, stats, health), as zod
 * schemas: the OpenAPI document and the typed client are made from them, and
 * test/api/outputs.test.ts checks real answers against them.
 */
const Id = z.uuid();
const Time = z.iso.datetime({ offset: true });
const Asset = z.enum(ASSETS as [string, ...string[]]);
const NextCursor = z.string().nullable().describe("pass it as `cursor` for the next page; null on the last page");
const Range = z.object({ from: Time, to: Time }).describe("the time range covered: [from, to)");

export const AlertView = z.object({
  id: Id,
  rule: z.enum(ALERT_RULES),
  severity: z.enum(SEVERITIES),
  status: z.enum(ALERT_STATUSES).describe("open → investigating → resolved | dismissed"),
  subject: z.object({ kind: z.enum(ALERT_SUBJECT_KINDS), id: z.string() }).describe("whom it is about: a wallet, a person (owner or chama member), or a chama; for the chain pipeline's own alerts a network or a payout"),
  window: z.object({ start: Time, end: Time }).describe("one alert per rule, subject and window: firings inside it bump `count`"),
  count: z.number().int().describe("how many times the rule fired in this window"),
  facts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).describe("what fired it, redacted: amounts, counts, windows, kinds; never a destination"),
  held: z.array(Id).describe("withdrawals its rule held for review (outcome `hold`)"),
  firstAt: Time,
  lastAt: Time,
  reviewedBy: z.string().optional(),
  reviewedAt: Time.optional(),
  createdAt: Time,
  updatedAt: Time,
});

export const AlertPage = z.object({ items: z.array(AlertView), nextCursor: NextCursor });

export const AlertDetail = AlertView.extend({
  reviews: z.array(z.object({ reviewer: z.string(), from: z.enum(ALERT_STATUSES), to: z.enum(ALERT_STATUSES), note: z.string().optional(), at: Time })).describe("oldest first"),
});

export const RulesView = z.object({
  rules: MonitoringRules,
  source: z.enum(["default", "file", "admin"]).describe("built in, MONITORING_RULES_FILE, or an admin's change"),
  updatedBy: z.string().optional(),
  updatedAt: Time.optional(),
});

export const TransactionView = z.object({
  id: Id,
  kind: z.enum(TRANSACTION_KINDS),
  status: z.string().describe("the object's status (`posted` for a credit, payment or chama deposit)"),
  asset: Asset,
  amount: Money,
  walletId: Id.optional(),
  chamaId: Id.optional(),
  ownerId: z.string().optional().describe("the wallet's owner, or the chama member a chama withdrawal is for"),
  counterparty: z.union([z.object({ walletId: Id }), z.object({ chamaId: Id })]).optional().describe("where a transfer went (a wallet, or a chama for a contribution), or the wallet a chama withdrawal pays into"),
  network: z.string().optional().describe("where a payout goes: a chain (`ethereum`…) or the kind of bank destination (`bank`, `bank_token`…)"),
  reference: z.string().optional(),
  createdAt: Time,
  updatedAt: Time,
});

export const TransactionPage = z.object({ items: z.array(TransactionView), nextCursor: NextCursor });

export const TransactionDetail = TransactionView.extend({
  journals: z.array(
    z.object({
      id: Id,
      kind: z.string(),
      asset: Asset,
      reference: z.string().optional(),
      createdAt: Time,
      postings: z.array(z.object({ account: z.string(), amount: Money })).describe("they sum to zero"),
    }),
  ),
  history: z.array(z.object({ type: z.string(), status: z.string().optional(), journalId: Id.optional(), at: Time })).describe("every committed event about it, oldest first"),
  external: z.array(z.object({ system: z.string(), kind: z.string(), id: z.string(), status: z.string().optional() })).describe("ids other systems know it by (Stripe's)"),
});

const Count = { count: z.number().int(), amount: Money };
export const DailyStats = z.object({ range: Range, items: z.array(z.object({ day: z.string().describe("YYYY-MM-DD (UTC)"), kind: z.string(), asset: Asset, ...Count })) });
export const NetworkStats = z.object({ range: Range, items: z.array(z.object({ network: z.string(), asset: Asset, status: z.string(), ...Count })) });
export const StatusStats = z.object({ range: Range, items: z.array(z.object({ kind: z.string(), status: z.string(), asset: Asset, ...Count })) });

const ComponentState = z.enum(["ok", "degraded", "down", "not_configured"]);
export const HealthView = z.object({
  status: z.enum(["ok", "degraded", "down"]).describe("the worst of the components"),
  checkedAt: Time,
  components: z.array(
    z.object({
      name: z.string().describe("postgres, nats, cluster, jetstream_relay, outbox, monitoring, stripe, network:<name>"),
      state: ComponentState,
      latencyMs: z.number().nullable(),
      details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
    }),
  ),
  networks: z.array(z.string()).describe("networks with an RPC probe registered (none until payouts go on chain)"),
});
