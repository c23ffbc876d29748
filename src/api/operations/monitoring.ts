import { z } from "zod";
import type { Reply } from "../../../actors/envelope";
import { CofferError, refusal } from "../../../lib/errors";
import { AlertDetail, AlertPage, RulesView } from "../../admin/outputs";
import type { AdminServices } from "../../admin/services";
import { ALERT_STATUSES, getAlert, listAlerts, reviewAlert } from "../../monitoring/alerts";
import { DEFAULT_RULES, MonitoringRules, SEVERITIES, type RulesInForce } from "../../monitoring/rules";
import { exactlyOnce } from "../exactly-once";
import { ok, operation, type OperationDeps } from "../operation";
import { ChamaWithdrawalView, WithdrawalView } from "../outputs";
import { IdCursor, PageLimit, Uuid } from "../schemas";
import { claimOf, type Caller } from "../wallet-service";

/**
 * Fraud and transaction monitoring (src/monitoring/): the alerts it raised and their review, its
 * rules, and the withdrawals it held. Auditors read; platform admins review, change the rules and
 * decide held withdrawals; no user and no service may do either.
 */
const alertId = Uuid.describe("the alert's id");
const withdrawalId = Uuid.describe("a wallet's or a chama's withdrawal, held by monitoring");
const EXAMPLE_ALERT = "0193a2b4-7e8f-7a0b-8c1d-2e3f4a5b6c7d";
const EXAMPLE_WITHDRAWAL = "0193a2b4-6d7e-7f80-9a1b-2c3d4e5f6a7b";
const Note = z.string().min(1).max(500).regex(/^[^\p{Cc}\p{Cs}]*$/u, "no control characters");

function admin(deps: OperationDeps): AdminServices {
  if (!deps.admin) throw new CofferError("UNAVAILABLE", "the admin services are not running on this node");
  return deps.admin;
}

/** Who reviewed, as the audit trails name platform credentials: `<role>#<subject>`. */
const reviewerOf = (caller: Caller) => `${caller.principal.role}#${caller.principal.sub}`;

/** The rules as answered: what is in force, where from, and who last changed them (each change's version is in the audit). */
function rulesView(r: RulesInForce): Record<string, unknown> {
  return { rules: r.rules, source: r.source, ...(r.updatedBy ? { updatedBy: r.updatedBy } : {}), ...(r.updatedAt ? { updatedAt: r.updatedAt } : {}) };
}

/** Runs a change outside any actor exactly once per key; a refusal is kept as the key's answer too. */
function once(deps: OperationDeps, caller: Caller, key: string, operation: string, target: string, normalized: unknown, run: (sql: Parameters<Parameters<typeof exactlyOnce>[3]>[0]) => Promise<Reply>) {
  return exactlyOnce(deps.db, deps.vault, claimOf(deps.vault, caller, key, operation, target, normalized), async (sql) => {
    try {
      return await run(sql);
    } catch (error) {
      if (error instanceof CofferError && error.status < 500) return refusal(error.code, error.detail);
      throw error;
    }
  });
}

export const monitoringOperations = [
  operation({
    name: "admin.alerts.list",
    method: "GET",
    path: "/admin/alerts",
    summary: "Monitoring alerts, newest first, by status and severity (admins and auditors)",
    input: z.strictObject({ status: z.enum(ALERT_STATUSES).optional(), severity: z.enum(SEVERITIES).optional(), limit: PageLimit, cursor: IdCursor.optional() }),
    output: AlertPage,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { status: "open", severity: "high", limit: 50 },
    run: ({ deps }, q) => ok(listAlerts(deps.db, { status: q.status, severity: q.severity, pageSize: q.limit, cursor: q.cursor })),
  }),
  operation({
    name: "admin.alerts.get",
    method: "GET",
    path: "/admin/alerts/:alertId",
    summary: "One alert: what fired it (redacted), what it held, and its reviews",
    input: z.strictObject({ alertId }),
    output: AlertDetail,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: { alertId: EXAMPLE_ALERT },
    run: ({ deps }, input) => ok(getAlert(deps.db, input.alertId)),
  }),
  operation({
    name: "admin.alerts.review",
    method: "POST",
    path: "/admin/alerts/:alertId/review",
    summary: "Review an alert: open → investigating → resolved | dismissed, with a note (admins)",
    input: z.strictObject({ alertId, status: z.enum(["investigating", "resolved", "dismissed"]), note: Note.optional() }),
    output: AlertDetail,
    status: 200,
    action: "alerts.review",
    tier: "standard",
    idempotent: true,
    example: { alertId: EXAMPLE_ALERT, status: "investigating", note: "asked the owner about the new account" },
    run: ({ caller, key, deps }, input) =>
      once(deps, caller, key, "admin.alerts.review", input.alertId, { status: input.status, note: input.note }, async (sql) => ({
        status: 200,
        body: await reviewAlert(sql as never, input.alertId, input.status, reviewerOf(caller), input.note, new Date()),
      })),
  }),
  operation({
    name: "admin.monitoring.rules.get",
    method: "GET",
    path: "/admin/monitoring/rules",
    summary: "The monitoring rules and thresholds in force, and where they come from",
    input: z.strictObject({}),
    output: RulesView,
    status: 200,
    action: "admin.read",
    tier: "standard",
    idempotent: false,
    example: {},
    run: async ({ deps }) => ok(rulesView(await admin(deps).rules.current())),
  }),
  operation({
    name: "admin.monitoring.rules.update",
    method: "POST",
    path: "/admin/monitoring/rules",
    summary: "Replace the monitoring rules and thresholds, for every node (admins; audited with before and after)",
    input: z.strictObject({ rules: MonitoringRules, note: Note.optional() }),
    output: RulesView,
    status: 200,
    action: "monitoring.rules.change",
    tier: "standard",
    idempotent: true,
    example: { rules: DEFAULT_RULES, note: "hold withdrawals to new destinations" },
    run: ({ caller, key, deps }, input) =>
      once(deps, caller, key, "admin.monitoring.rules.update", "", input, async (sql) => ({
        status: 200,
        body: rulesView(await admin(deps).rules.replace(sql as never, input.rules, reviewerOf(caller), input.note, new Date())),
      })),
  }),
  ...(["release", "reject"] as const).map((decision) =>
    operation({
      name: `admin.withdrawals.${decision}`,
      method: "POST",
      path: `/admin/withdrawals/:withdrawalId/${decision}`,
      summary:
        decision === "release"
          ? "Release a withdrawal monitoring held: it continues (a chama's goes back to its admins' review) (admins)"
          : "Reject a withdrawal monitoring held: it ends and its hold is released (admins)",
      input: z.strictObject({ withdrawalId, note: Note.optional() }),
      output: z.union([WithdrawalView, ChamaWithdrawalView]),
      status: 200,
      action: "withdrawal.review",
      tier: "standard",
      idempotent: true,
      example: { withdrawalId: EXAMPLE_WITHDRAWAL, note: decision === "release" ? "the owner confirmed the account" : "the account is not the owner's" },
      run: ({ caller, key, deps }, input) => decideHeld(deps, caller, key, input.withdrawalId, decision, input.note),
    }),
  ),
];

/**
 * A wallet's withdrawal goes to its wallet's actor, a chama's to its chama's; the actor refuses one
 * that is not held (409 INVALID_TRANSITION). The hold's row records who decided, and the note.
 */
async function decideHeld(deps: OperationDeps, caller: Caller, key: string, id: string, decision: "release" | "reject", note: string | undefined): Promise<Reply> {
  const [wallet] = await deps.db`select 1 from withdrawals where id = ${id}`;
  let reply: Reply;
  if (wallet) {
    reply = await deps.ops.decideHeldWithdrawal(caller, key, id, decision);
  } else {
    const [chama] = await deps.db`select chama_id from chama_withdrawals where id = ${id}`;
    if (!chama) throw new CofferError("WITHDRAWAL_NOT_FOUND", "withdrawal not found");
    reply = await deps.chamas.decideHeldWithdrawal(caller, key, chama.chama_id as string, id, decision, note);
  }
  if (reply.status < 300) {
    await deps.db`update monitoring_holds set status = ${decision === "release" ? "released" : "rejected"}, decided_by = ${reviewerOf(caller)},
        note = ${note ?? null}, updated_at = now() where withdrawal_id = ${id}`;
  }
  return reply;
}
