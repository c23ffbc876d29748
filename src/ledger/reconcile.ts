import Stripe from "stripe";
import { isAsset } from "../../lib/assets";
import type { Db } from "../../lib/db";
import { formatAmount } from "../../lib/money";
import { METADATA } from "../integrations/stripe/client";
import { assetOfCurrency, fromStripeAmount } from "../integrations/stripe/money";

/**
 * Reconciliation: what Stripe reports against what Coffer booked, object by object, and the
 * system accounts Stripe's money passes through.
 *
 * Stripe's side is listed through the SDK (auto-pagination, newest first, at most `objectsMax` of
 * each kind): PaymentIntents, refunds, disputes, payouts and transfers, keeping those that are
 * Coffer's (Coffer's metadata, or a PaymentIntent Coffer has a deposit for). Coffer's side is its
 * rows: `deposits`, `deposit_refunds`, `deposit_disputes`, `withdrawals` with `withdrawal_payouts`,
 * and the postings of `system:stripe_clearing`, `system:stripe_disputes`, `system:stripe_payouts`.
 *
 * Every difference is listed (at most `limit`; all are counted):
 * - `missing_in_coffer`: Stripe has it, Coffer does not: a PaymentIntent that succeeded (money
 *   taken) with no deposit, a refund or dispute of a Coffer deposit Coffer never booked, a payout or
 *   transfer naming a withdrawal Coffer did not pay that way. (A PaymentIntent never paid and never
 *   recorded moved no money: not a difference.)
 * - `missing_at_stripe`: Coffer has it, Stripe does not (asked for it by id before saying so).
 * - `amount_differs`, `status_differs`: both have it and disagree (statuses compared as Coffer
 *   maps Stripe's: a succeeded PaymentIntent is a paid deposit, a paid payout a completed
 *   withdrawal, a failed one a failed or returned withdrawal, …).
 * - `ledger_differs`: the postings Coffer booked for an object (or a whole system account) are not
 *   what Stripe's word implies: a deposit's clearing postings are −(received − refunded), its
 *   dispute postings what open and lost disputes hold, a withdrawal's payout postings its amount
 *   once Stripe paid it.
 *
 * With `since`, objects created since then are compared (Stripe is listed from an hour earlier, so
 * one made just before its Coffer row is not missed), and the system accounts' totals are not
 * (they hold all time). Objects with a step still in flight (a deposit's credit not yet booked, a
 * payout not yet ended, a refund not yet answered) are counted and not compared: run it when quiet.
 */
export type DifferenceKind = "missing_in_coffer" | "missing_at_stripe" | "amount_differs" | "status_differs" | "ledger_differs";
export type ReconciledObject = "payment_intent" | "refund" | "dispute" | "payout" | "transfer" | "account";

export interface Difference {
  kind: DifferenceKind;
  object: ReconciledObject;
  stripeId?: string;
  /** The deposit, refund, dispute or withdrawal id in Coffer; the account for `account`. */
  cofferId?: string;
  field?: string;
  asset?: string;
  /** What Stripe says and what Coffer says (amounts as decimals of `asset`). */
  stripe?: string;
  coffer?: string;
  detail: string;
}

export type StripeKind = "paymentIntents" | "refunds" | "disputes" | "payouts" | "transfers";

export interface ReconcileProgress {
  stage: StripeKind | "coffer" | "ledger" | "done";
  /** Objects listed from Stripe so far (all of them, Coffer's or not). */
  listed: Record<StripeKind, number>;
  differences: number;
  elapsedMs: number;
}

export interface ReconcileSummary {
  since: string | null;
  /** Coffer's objects Stripe reported, by kind. */
  stripe: Record<StripeKind, number>;
  coffer: { deposits: number; refunds: number; disputes: number; withdrawals: number };
  /** Objects left out because a step of theirs is still in flight. */
  inFlight: number;
  differences: number;
  /** A list stopped at `objectsMax` (or too many lookups by id): some objects were not compared, and no totals. */
  truncated: boolean;
  /** Whether the system accounts' totals were compared (only without `since`, and when nothing was truncated). */
  totalsChecked: boolean;
  elapsedMs: number;
}

export interface ReconcileReport {
  ok: boolean;
  differences: Difference[];
  summary: ReconcileSummary;
}

export interface ReconcileOptions {
  since?: Date;
  /** Differences listed at most (all are counted). */
  limit?: number;
  /** Objects listed from Stripe per kind at most. */
  objectsMax?: number;
  onProgress?: (progress: ReconcileProgress) => void;
}

const LIMIT_DEFAULT = 1_000;
const OBJECTS_MAX_DEFAULT = 50_000;
/** Objects asked for one by one (Coffer has them, Stripe's lists did not) at most per run. */
const RETRIEVES_MAX = 1_000;
/** Stripe is listed from this long before `since`: its objects are made just before Coffer's rows. */
const MARGIN_S = 3_600;
/** Ids per query when rows are looked up by a list of ids. */
const IDS_PER_QUERY = 1_000;

const CLEARING = "system:stripe_clearing";
const DISPUTES = "system:stripe_disputes";
const PAYOUTS = "system:stripe_payouts";

const PAID_DEPOSIT = ["succeeded", "partially_refunded", "refunded", "disputed", "charged_back"];
/** Stripe's refund statuses for money that left (or is leaving) Stripe's balance. */
const LIVE_REFUND = ["succeeded", "pending", "requires_action"];

interface DepositRow {
  id: string;
  asset: string;
  amount: bigint;
  received: bigint;
  status: string;
  paymentIntentId: string;
}

interface CofferRefund {
  id: string;
  depositId: string;
  asset: string;
  amount: bigint;
  status: string;
  stripeRefundId: string;
}

interface CofferDispute {
  id: string;
  depositId: string;
  asset: string;
  amount: bigint;
  status: string;
}

interface CofferWithdrawal {
  id: string;
  asset: string;
  amount: bigint;
  status: string;
  kind: "payout" | "transfer";
  stripeId: string | null;
  payoutStatus: string;
}

export async function reconcile(db: Db, stripe: Stripe, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const started = performance.now();
  const limit = options.limit ?? LIMIT_DEFAULT;
  const objectsMax = options.objectsMax ?? OBJECTS_MAX_DEFAULT;
  const since = options.since;
  const created = since ? { created: { gte: Math.floor(since.getTime() / 1000) - MARGIN_S } } : {};
  const differences: Difference[] = [];
  let found = 0;
  let truncated = false;
  let retrieves = 0;
  const listed: Record<StripeKind, number> = { paymentIntents: 0, refunds: 0, disputes: 0, payouts: 0, transfers: 0 };
  const add = (d: Difference) => {
    found++;
    if (differences.length < limit) differences.push(d);
  };
  const progress = (stage: ReconcileProgress["stage"]) =>
    options.onProgress?.({ stage, listed: { ...listed }, differences: found, elapsedMs: Math.round(performance.now() - started) });

  /** Every object of a list, newest first, at most objectsMax (then the run is marked truncated). */
  async function list<T>(kind: StripeKind, items: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    progress(kind);
    for await (const item of items) {
      if (out.length >= objectsMax) {
        truncated = true;
        break;
      }
      out.push(item);
      listed[kind]++;
      if (listed[kind] % 100 === 0) progress(kind);
    }
    return out;
  }

  /** One object by id, or "missing" when Stripe has no such object; bounded per run. */
  async function retrieve<T>(get: () => Promise<T>): Promise<T | "missing" | "skipped"> {
    if (retrieves >= RETRIEVES_MAX) {
      truncated = true;
      return "skipped";
    }
    retrieves++;
    try {
      return await get();
    } catch (error) {
      if (error instanceof Stripe.errors.StripeInvalidRequestError && (error.code === "resource_missing" || error.statusCode === 404)) return "missing";
      throw error;
    }
  }

  const money = (minor: bigint, asset: string) => (isAsset(asset) ? formatAmount(minor, asset) : minor.toString());

  // ---- Stripe's side ---------------------------------------------------------------------------
  const allIntents = await list("paymentIntents", stripe.paymentIntents.list({ limit: 100, ...created }));
  const allRefunds = await list("refunds", stripe.refunds.list({ limit: 100, ...created }));
  const allDisputes = await list("disputes", stripe.disputes.list({ limit: 100, ...created }));
  const allPayouts = await list("payouts", stripe.payouts.list({ limit: 100, ...created }));
  const allTransfers = await list("transfers", stripe.transfers.list({ limit: 100, ...created }));

  // ---- Coffer's side ---------------------------------------------------------------------------
  progress("coffer");
  const sinceArg = since ? since.toISOString() : null;
  const piOf = (value: string | { id: string } | null | undefined) => (typeof value === "string" ? value : (value?.id ?? undefined));
  const intentIds = new Set<string>([
    ...allIntents.map((pi) => pi.id),
    ...allRefunds.map((r) => piOf(r.payment_intent)).filter((x): x is string => !!x),
    ...allDisputes.map((d) => piOf(d.payment_intent)).filter((x): x is string => !!x),
  ]);
  const depositsByPi = new Map<string, DepositRow>();
  const depositRow = (r: Record<string, unknown>): DepositRow => ({
    id: r.id as string,
    asset: r.asset as string,
    amount: BigInt(r.amount as string),
    received: BigInt(r.received as string),
    status: r.status as string,
    paymentIntentId: r.payment_intent_id as string,
  });
  const windowDeposits = await db`select id, asset, amount::text as amount, received::text as received, status, payment_intent_id from deposits
    where ${sinceArg}::timestamptz is null or created_at >= ${sinceArg}::timestamptz order by created_at desc, id limit ${objectsMax + 1}`;
  if (windowDeposits.length > objectsMax) truncated = true;
  const inWindow = windowDeposits.slice(0, objectsMax).map(depositRow);
  for (const d of inWindow) depositsByPi.set(d.paymentIntentId, d);
  for (const ids of chunks([...intentIds].filter((id) => !depositsByPi.has(id)))) {
    const rows = await db`select id, asset, amount::text as amount, received::text as received, status, payment_intent_id from deposits where payment_intent_id = any(${db.array(ids)}::text[])`;
    for (const r of rows) depositsByPi.set(r.payment_intent_id, depositRow(r));
  }
  const depositsById = new Map([...depositsByPi.values()].map((d) => [d.id, d]));
  const inFlightDeposits = new Set((await db`select distinct aggregate_id::text as id from outbox where deposit_pending`).map((r) => r.id as string));
  let inFlight = 0;

  // Stripe's objects that are Coffer's.
  const intents = allIntents.filter((pi) => pi.metadata?.[METADATA.depositId] !== undefined || depositsByPi.has(pi.id));
  const refunds = allRefunds.filter((r) => depositsByPi.has(piOf(r.payment_intent) ?? ""));
  const disputes = allDisputes.filter((d) => depositsByPi.has(piOf(d.payment_intent) ?? ""));
  const payouts = allPayouts.filter((p) => p.metadata?.[METADATA.withdrawalId] !== undefined);
  const transfers = allTransfers.filter((t) => t.metadata?.[METADATA.withdrawalId] !== undefined);

  // ---- PaymentIntents ⇄ deposits ---------------------------------------------------------------
  const intentById = new Map(intents.map((pi) => [pi.id, pi]));
  const compareDeposit = (d: DepositRow, pi: Stripe.PaymentIntent) => {
    const base = { object: "payment_intent" as const, stripeId: pi.id, cofferId: d.id, asset: d.asset };
    if (fromStripeAmount(pi.amount) !== d.amount) add({ ...base, kind: "amount_differs", field: "amount", stripe: money(BigInt(pi.amount), d.asset), coffer: money(d.amount, d.asset), detail: "the PaymentIntent is for another amount than its deposit" });
    if (assetOfCurrency(pi.currency) !== d.asset) add({ ...base, kind: "amount_differs", field: "currency", stripe: assetOfCurrency(pi.currency), coffer: d.asset, detail: "the PaymentIntent is in another currency than its deposit" });
    if (inFlightDeposits.has(d.id)) {
      inFlight++;
      return;
    }
    const stripePaid = pi.status === "succeeded";
    const cofferPaid = PAID_DEPOSIT.includes(d.status);
    if (stripePaid !== cofferPaid || (pi.status === "canceled") !== (d.status === "canceled")) {
      add({ ...base, kind: "status_differs", field: "status", stripe: pi.status, coffer: d.status, detail: stripePaid ? "Stripe took the money; the deposit is not paid" : "the deposit is booked as paid; Stripe says it was not" });
    } else if (stripePaid && fromStripeAmount(pi.amount_received) !== d.received) {
      add({ ...base, kind: "amount_differs", field: "received", stripe: money(BigInt(pi.amount_received), d.asset), coffer: money(d.received, d.asset), detail: "Stripe received another amount than the deposit booked" });
    }
  };
  for (const pi of intents) {
    const d = depositsByPi.get(pi.id);
    if (d) compareDeposit(d, pi);
    else if (pi.status === "succeeded") {
      add({ kind: "missing_in_coffer", object: "payment_intent", stripeId: pi.id, cofferId: pi.metadata?.[METADATA.depositId], asset: assetOfCurrency(pi.currency), stripe: pi.status, detail: "Stripe took the money of a Coffer PaymentIntent; Coffer has no deposit for it" });
    }
  }
  for (const d of inWindow) {
    if (intentById.has(d.paymentIntentId)) continue;
    const pi = await retrieve(() => stripe.paymentIntents.retrieve(d.paymentIntentId));
    if (pi === "skipped") continue;
    if (pi === "missing") add({ kind: "missing_at_stripe", object: "payment_intent", stripeId: d.paymentIntentId, cofferId: d.id, asset: d.asset, coffer: d.status, detail: "the deposit's PaymentIntent does not exist at Stripe" });
    else {
      intentById.set(pi.id, pi);
      compareDeposit(d, pi);
    }
  }

  // ---- refunds ⇄ deposit_refunds ---------------------------------------------------------------
  const refundRow = (r: Record<string, unknown>): CofferRefund => ({
    id: r.id as string,
    depositId: r.deposit_id as string,
    asset: r.asset as string,
    amount: BigInt(r.amount as string),
    status: r.status as string,
    stripeRefundId: r.stripe_refund_id as string,
  });
  const cofferRefunds = new Map<string, CofferRefund>();
  const windowRefunds = await db`select r.id, r.deposit_id, d.asset, r.amount::text as amount, r.status, r.stripe_refund_id from deposit_refunds r join deposits d on d.id = r.deposit_id
    where r.stripe_refund_id is not null and (${sinceArg}::timestamptz is null or r.created_at >= ${sinceArg}::timestamptz) order by r.created_at desc limit ${objectsMax + 1}`;
  if (windowRefunds.length > objectsMax) truncated = true;
  for (const r of windowRefunds.slice(0, objectsMax)) cofferRefunds.set(r.stripe_refund_id, refundRow(r));
  for (const ids of chunks(refunds.map((r) => r.id).filter((id) => !cofferRefunds.has(id)))) {
    const rows = await db`select r.id, r.deposit_id, d.asset, r.amount::text as amount, r.status, r.stripe_refund_id from deposit_refunds r join deposits d on d.id = r.deposit_id
      where r.stripe_refund_id = any(${db.array(ids)}::text[])`;
    for (const r of rows) cofferRefunds.set(r.stripe_refund_id, refundRow(r));
  }
  const refundById = new Map(refunds.map((r) => [r.id, r]));
  const compareRefund = (c: CofferRefund, r: Stripe.Refund) => {
    const base = { object: "refund" as const, stripeId: r.id, cofferId: c.id, asset: c.asset };
    if (fromStripeAmount(r.amount) !== c.amount) add({ ...base, kind: "amount_differs", field: "amount", stripe: money(BigInt(r.amount), c.asset), coffer: money(c.amount, c.asset), detail: "the refund's amount differs" });
    const stripeStatus = r.status === "requires_action" ? "pending" : String(r.status);
    const cofferStatus = c.status === "requested" ? "pending" : c.status;
    if (stripeStatus !== cofferStatus) add({ ...base, kind: "status_differs", field: "status", stripe: String(r.status), coffer: c.status, detail: "the refund's status differs" });
  };
  for (const r of refunds) {
    const c = cofferRefunds.get(r.id);
    if (c) compareRefund(c, r);
    else add({ kind: "missing_in_coffer", object: "refund", stripeId: r.id, cofferId: depositsByPi.get(piOf(r.payment_intent)!)?.id, asset: assetOfCurrency(r.currency), stripe: `${r.status} ${money(BigInt(r.amount), assetOfCurrency(r.currency))}`, detail: "a refund of a Coffer deposit that Coffer never booked" });
  }
  for (const c of cofferRefunds.values()) {
    if (refundById.has(c.stripeRefundId)) continue;
    const r = await retrieve(() => stripe.refunds.retrieve(c.stripeRefundId));
    if (r === "skipped") continue;
    if (r === "missing") add({ kind: "missing_at_stripe", object: "refund", stripeId: c.stripeRefundId, cofferId: c.id, asset: c.asset, coffer: c.status, detail: "the refund does not exist at Stripe" });
    else {
      refundById.set(r.id, r);
      compareRefund(c, r);
    }
  }

  // ---- disputes ⇄ deposit_disputes -------------------------------------------------------------
  const disputeRow = (r: Record<string, unknown>): CofferDispute => ({ id: r.id as string, depositId: r.deposit_id as string, asset: r.asset as string, amount: BigInt(r.amount as string), status: r.status as string });
  const cofferDisputes = new Map<string, CofferDispute>();
  const windowDisputes = await db`select x.id, x.deposit_id, d.asset, x.amount::text as amount, x.status from deposit_disputes x join deposits d on d.id = x.deposit_id
    where ${sinceArg}::timestamptz is null or x.created_at >= ${sinceArg}::timestamptz order by x.created_at desc limit ${objectsMax + 1}`;
  if (windowDisputes.length > objectsMax) truncated = true;
  for (const r of windowDisputes.slice(0, objectsMax)) cofferDisputes.set(r.id, disputeRow(r));
  for (const ids of chunks(disputes.map((d) => d.id).filter((id) => !cofferDisputes.has(id)))) {
    const rows = await db`select x.id, x.deposit_id, d.asset, x.amount::text as amount, x.status from deposit_disputes x join deposits d on d.id = x.deposit_id where x.id = any(${db.array(ids)}::text[])`;
    for (const r of rows) cofferDisputes.set(r.id, disputeRow(r));
  }
  const disputeById = new Map(disputes.map((d) => [d.id, d]));
  const compareDispute = (c: CofferDispute, d: Stripe.Dispute) => {
    const base = { object: "dispute" as const, stripeId: d.id, cofferId: c.depositId, asset: c.asset };
    if (fromStripeAmount(d.amount) !== c.amount) add({ ...base, kind: "amount_differs", field: "amount", stripe: money(BigInt(d.amount), c.asset), coffer: money(c.amount, c.asset), detail: "the dispute's amount differs" });
    if (disputeStatusOf(d.status) !== c.status) add({ ...base, kind: "status_differs", field: "status", stripe: d.status, coffer: c.status, detail: "the dispute's outcome differs" });
  };
  for (const d of disputes) {
    const c = cofferDisputes.get(d.id);
    if (c) compareDispute(c, d);
    else add({ kind: "missing_in_coffer", object: "dispute", stripeId: d.id, cofferId: depositsByPi.get(piOf(d.payment_intent)!)?.id, asset: assetOfCurrency(d.currency), stripe: `${d.status} ${money(BigInt(d.amount), assetOfCurrency(d.currency))}`, detail: "a dispute of a Coffer deposit that Coffer never booked" });
  }
  for (const c of cofferDisputes.values()) {
    if (disputeById.has(c.id)) continue;
    const d = await retrieve(() => stripe.disputes.retrieve(c.id));
    if (d === "skipped") continue;
    if (d === "missing") add({ kind: "missing_at_stripe", object: "dispute", stripeId: c.id, cofferId: c.depositId, asset: c.asset, coffer: c.status, detail: "the dispute does not exist at Stripe" });
    else {
      disputeById.set(d.id, d);
      compareDispute(c, d);
    }
  }

  // ---- payouts and transfers ⇄ withdrawals -----------------------------------------------------
  const withdrawalRow = (r: Record<string, unknown>): CofferWithdrawal => ({
    id: r.id as string,
    asset: r.asset as string,
    amount: BigInt(r.amount as string),
    status: r.status as string,
    kind: r.kind as "payout" | "transfer",
    stripeId: (r.stripe_id as string | null) ?? null,
    payoutStatus: r.payout_status as string,
  });
  const withdrawals = new Map<string, CofferWithdrawal>();
  const windowWithdrawals = await db`select w.id, w.asset, w.amount::text as amount, w.status, p.kind, p.stripe_id, p.status as payout_status
    from withdrawal_payouts p join withdrawals w on w.id = p.withdrawal_id
    where ${sinceArg}::timestamptz is null or w.created_at >= ${sinceArg}::timestamptz order by w.created_at desc limit ${objectsMax + 1}`;
  if (windowWithdrawals.length > objectsMax) truncated = true;
  for (const r of windowWithdrawals.slice(0, objectsMax)) withdrawals.set(r.id, withdrawalRow(r));
  const named = [...payouts, ...transfers].map((o) => o.metadata![METADATA.withdrawalId]!).filter((id) => UUID.test(id) && !withdrawals.has(id));
  for (const ids of chunks(named)) {
    const rows = await db`select w.id, w.asset, w.amount::text as amount, w.status, p.kind, p.stripe_id, p.status as payout_status
      from withdrawal_payouts p join withdrawals w on w.id = p.withdrawal_id where w.id = any(${db.array(ids)}::uuid[])`;
    for (const r of rows) withdrawals.set(r.id, withdrawalRow(r));
  }
  const inFlightWithdrawals = new Set((await db`select distinct payload->>'withdrawalId' as id from outbox where payout_pending`).map((r) => r.id as string));
  /** What Stripe says of each withdrawal's money: paid out, or not (failed, canceled, on its way). */
  const paidOut = new Map<string, boolean>();
  const seenStripe = new Set<string>();
  const compareWithdrawal = (w: CofferWithdrawal, o: { id: string; amount: number; currency: string; status: string }, object: "payout" | "transfer") => {
    const base = { object, stripeId: o.id, cofferId: w.id, asset: w.asset };
    seenStripe.add(o.id);
    if (w.kind !== object || (w.stripeId !== null && w.stripeId !== o.id)) {
      add({ ...base, kind: "missing_in_coffer", stripe: o.status, detail: `a ${object} naming a withdrawal Coffer paid out by ${w.stripeId ? `another ${w.kind} (${w.stripeId})` : `a ${w.kind}`}` });
      return;
    }
    if (fromStripeAmount(o.amount) !== w.amount || assetOfCurrency(o.currency) !== w.asset) {
      add({ ...base, kind: "amount_differs", field: "amount", stripe: `${money(BigInt(o.amount), assetOfCurrency(o.currency))} ${assetOfCurrency(o.currency)}`, coffer: `${money(w.amount, w.asset)} ${w.asset}`, detail: `the ${object} is not for the withdrawal's amount` });
    }
    const paid = o.status === "paid";
    paidOut.set(w.id, paid);
    if (inFlightWithdrawals.has(w.id)) {
      inFlight++;
      return;
    }
    const expected = paid ? ["completed"] : o.status === "failed" || o.status === "canceled" ? ["failed", "returned"] : ["processing"];
    if (!expected.includes(w.status)) add({ ...base, kind: "status_differs", field: "status", stripe: o.status, coffer: w.status, detail: `Stripe's ${object} and the withdrawal disagree` });
  };
  for (const p of payouts) {
    const w = withdrawals.get(p.metadata![METADATA.withdrawalId]!);
    if (w) compareWithdrawal(w, { id: p.id, amount: p.amount, currency: p.currency, status: p.status }, "payout");
    else add({ kind: "missing_in_coffer", object: "payout", stripeId: p.id, cofferId: p.metadata![METADATA.withdrawalId], asset: assetOfCurrency(p.currency), stripe: p.status, detail: "a payout naming a withdrawal Coffer did not pay out through Stripe" });
  }
  for (const t of transfers) {
    const w = withdrawals.get(t.metadata![METADATA.withdrawalId]!);
    // A transfer is made or not at all; one reversed in full took its money back.
    const status = t.reversed ? "canceled" : "paid";
    if (w) compareWithdrawal(w, { id: t.id, amount: t.amount, currency: t.currency, status }, "transfer");
    else add({ kind: "missing_in_coffer", object: "transfer", stripeId: t.id, cofferId: t.metadata![METADATA.withdrawalId], asset: assetOfCurrency(t.currency), stripe: status, detail: "a transfer naming a withdrawal Coffer did not pay out through Stripe" });
  }
  for (const w of withdrawals.values()) {
    if (!w.stripeId || seenStripe.has(w.stripeId)) continue;
    const o =
      w.kind === "payout"
        ? await retrieve(() => stripe.payouts.retrieve(w.stripeId!))
        : await retrieve(() => stripe.transfers.retrieve(w.stripeId!));
    if (o === "skipped") continue;
    if (o === "missing") add({ kind: "missing_at_stripe", object: w.kind, stripeId: w.stripeId, cofferId: w.id, asset: w.asset, coffer: w.status, detail: `the withdrawal's ${w.kind} does not exist at Stripe` });
    else {
      const status = "status" in o ? String(o.status) : (o as Stripe.Transfer).reversed ? "canceled" : "paid";
      compareWithdrawal(w, { id: o.id, amount: o.amount, currency: o.currency, status }, w.kind);
    }
  }

  // ---- the ledger ------------------------------------------------------------------------------
  progress("ledger");
  const liveRefunded = new Map<string, bigint>();
  for (const r of refundById.values()) {
    const d = depositsByPi.get(piOf(r.payment_intent) ?? "");
    if (d && LIVE_REFUND.includes(String(r.status))) liveRefunded.set(d.id, (liveRefunded.get(d.id) ?? 0n) + BigInt(r.amount));
  }
  const heldByDisputes = new Map<string, bigint>();
  for (const x of disputeById.values()) {
    const d = depositsByPi.get(piOf(x.payment_intent) ?? "");
    if (d && disputeStatusOf(x.status) !== "won") heldByDisputes.set(d.id, (heldByDisputes.get(d.id) ?? 0n) + BigInt(x.amount));
  }
  const pendingRefunds = new Set((await db`select distinct deposit_id::text as id from deposit_refunds where status = 'requested'`).map((r) => r.id as string));
  const booked = await postingsBySource(db, [...depositsById.keys(), ...withdrawals.keys()]);
  for (const d of depositsById.values()) {
    const pi = intentById.get(d.paymentIntentId);
    if (!pi || inFlightDeposits.has(d.id) || pendingRefunds.has(d.id)) continue;
    const received = pi.status === "succeeded" ? BigInt(pi.amount_received) : 0n;
    const expectations: [string, bigint][] = [
      [CLEARING, -(received - (liveRefunded.get(d.id) ?? 0n))],
      [DISPUTES, heldByDisputes.get(d.id) ?? 0n],
    ];
    for (const [account, expected] of expectations) {
      const actual = booked.get(`${d.id}|${account}`) ?? 0n;
      if (actual !== expected) add({ kind: "ledger_differs", object: "payment_intent", stripeId: pi.id, cofferId: d.id, field: account, asset: d.asset, stripe: money(expected, d.asset), coffer: money(actual, d.asset), detail: `the deposit's postings on ${account} are not what Stripe's word implies` });
    }
  }
  for (const w of withdrawals.values()) {
    if (!paidOut.has(w.id) || inFlightWithdrawals.has(w.id)) continue;
    const expected = paidOut.get(w.id) ? w.amount : 0n;
    const actual = booked.get(`${w.id}|${PAYOUTS}`) ?? 0n;
    if (actual !== expected) add({ kind: "ledger_differs", object: w.kind, stripeId: w.stripeId ?? undefined, cofferId: w.id, field: PAYOUTS, asset: w.asset, stripe: money(expected, w.asset), coffer: money(actual, w.asset), detail: `the withdrawal's postings on ${PAYOUTS} are not what Stripe's word implies` });
  }

  // The system accounts as a whole: all time, so only without `since` and with every object listed.
  const totalsChecked = !since && !truncated && inFlight === 0 && inFlightDeposits.size === 0 && inFlightWithdrawals.size === 0 && pendingRefunds.size === 0;
  if (totalsChecked) {
    const expected = new Map<string, bigint>();
    const plus = (account: string, asset: string, amount: bigint) => expected.set(`${account}|${asset}`, (expected.get(`${account}|${asset}`) ?? 0n) + amount);
    for (const d of depositsById.values()) {
      const pi = intentById.get(d.paymentIntentId);
      if (!pi) continue;
      plus(CLEARING, d.asset, -((pi.status === "succeeded" ? BigInt(pi.amount_received) : 0n) - (liveRefunded.get(d.id) ?? 0n)));
      plus(DISPUTES, d.asset, heldByDisputes.get(d.id) ?? 0n);
    }
    for (const w of withdrawals.values()) if (paidOut.get(w.id)) plus(PAYOUTS, w.asset, w.amount);
    const totals = await db`select account, asset, sum(amount)::text as total from postings where account = any(${db.array([CLEARING, DISPUTES, PAYOUTS])}::text[]) group by 1, 2`;
    const actual = new Map(totals.map((r) => [`${r.account}|${r.asset}`, BigInt(r.total)]));
    for (const key of new Set([...expected.keys(), ...actual.keys()])) {
      const [account, asset] = key.split("|") as [string, string];
      const e = expected.get(key) ?? 0n;
      const a = actual.get(key) ?? 0n;
      if (e !== a) add({ kind: "ledger_differs", object: "account", cofferId: account, field: "total", asset, stripe: money(e, asset), coffer: money(a, asset), detail: `the postings of ${account} add up to another total than Stripe's objects imply` });
    }
  }

  progress("done");
  return {
    ok: found === 0,
    differences,
    summary: {
      since: since ? since.toISOString() : null,
      stripe: { paymentIntents: intents.length, refunds: refunds.length, disputes: disputes.length, payouts: payouts.length, transfers: transfers.length },
      coffer: { deposits: depositsById.size, refunds: cofferRefunds.size, disputes: cofferDisputes.size, withdrawals: withdrawals.size },
      inFlight,
      differences: found,
      truncated,
      totalsChecked,
      elapsedMs: Math.round(performance.now() - started),
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A Stripe dispute's status as Coffer keeps it (src/integrations/stripe/deposit-events.ts: an inquiry closed counts as won). */
function disputeStatusOf(status: string): "open" | "won" | "lost" {
  if (status === "won" || status === "warning_closed") return "won";
  if (status === "lost") return "lost";
  return "open";
}

/** The sum of each object's postings on Stripe's system accounts, by `<objectId>|<account>`. */
async function postingsBySource(db: Db, ids: string[]): Promise<Map<string, bigint>> {
  const sums = new Map<string, bigint>();
  for (const part of chunks(ids)) {
    const rows = await db`select j.source_id::text as id, p.account, sum(p.amount)::text as total
      from journals j join postings p on p.journal_id = j.id
      where j.source_id = any(${db.array(part)}::uuid[]) and j.source_id <> j.id and p.account = any(${db.array([CLEARING, DISPUTES, PAYOUTS])}::text[])
      group by 1, 2`;
    for (const r of rows) sums.set(`${r.id}|${r.account}`, BigInt(r.total));
  }
  return sums;
}

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += IDS_PER_QUERY) out.push(items.slice(i, i + IDS_PER_QUERY));
  return out;
}
