import type { Db, Queryable } from "../../../lib/db";
import { isAsset, type Asset } from "../../../lib/assets";
import { CofferError } from "../../../lib/errors";
import { formatAmount } from "../../../lib/money";
import { redact } from "../../../lib/redact";
import { FieldError } from "../../api/input";
import type { ChainNetwork, Networks } from "./config";

/**
 * What operators do to the chain payout pipeline, on the database side (the routes are
 * src/api/operations/chain.ts). The worker alone touches the chain: an operator's retry puts a parked
 * payout back where it was, and a replace or a cancel is a request (`operator_action`) the worker
 * carries out. Every change runs in the caller's transaction with the payout's row locked
 * (`select … for update`) and is written only if the row is still in the status that was read; the
 * worker's own updates are conditional on status too (`where status = <from>`), so when both act at
 * once exactly one of them wins and the other changes nothing. Each change writes one row of
 * `chain_operator_audit`.
 */

/** What the routes need from the node: the parsed NETWORKS_FILE, and a way to wake the payout workers. */
export interface ChainOperatorDeps {
  /** The networks of NETWORKS_FILE as parsed at start (empty when it names none). */
  networks: Networks;
  /** Wakes the payout workers after an operator's change, where the node runs them. */
  kick?: (() => void) | undefined;
}

/** Payouts that will still take money out of the hot wallet: what the runway keeps aside. */
const PENDING = ["claimed", "signed", "broadcast", "confirmed", "cancelling"] as const;
/** The queue the networks view counts: every status with work left for the pipeline or an operator. */
const QUEUE = [...PENDING, "parked"] as const;
/** Where a parked payout may be put back. */
const RESUMABLE = new Set<string>(PENDING);
/** The most of a worker's text (an error, a reason, a drift report) an answer carries. */
const TEXT_MAX = 500;

type Row = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// Networks

function nativeAsset(n: ChainNetwork): Asset {
  return n.kind === "evm" ? "ETH" : "SOL";
}

function feeMarginOf(n: ChainNetwork): bigint {
  return n.kind === "evm" ? n.runway.feeMarginWei : n.runway.feeMarginLamports;
}

function networkNamed(networks: Networks, name: string): ChainNetwork {
  const n = Object.hasOwn(networks, name) ? networks[name] : undefined;
  if (!n) throw new CofferError("NOT_FOUND", "no such network in NETWORKS_FILE");
  return n;
}

/** Every configured network, by name, as operators see it. */
export async function listNetworks(db: Queryable, networks: Networks) {
  return { items: await networkViews(db, networks, Object.keys(networks).sort()) };
}

async function networkViews(q: Queryable, networks: Networks, names: string[]) {
  if (!names.length) return [];
  const rows = await q`select n.name, c.paused, c.paused_by, c.paused_reason, c.paused_at, c.hot_balance::text as hot_balance,
      case when c.hot_balance is not null then coalesce(c.hot_balance_at, c.updated_at) end as hot_balance_at,
      c.last_block::text as last_block, c.last_block_at, c.chain_nonce::text as chain_nonce, c.drift, h.address,
      (select count(*)::int from chain_dlq d where d.network = n.name and d.status = 'open') as dead_letters
    from unnest(${names}::text[]) as n(name)
    left join chain_networks c on c.network = n.name
    left join hot_wallets h on h.network = n.name
    order by n.name`;
  // Counted per status and asset through the (network, status, created_at) index; summed here in bigint.
  const queued = await q`select network, status, asset, count(*)::int as n, sum(amount)::text as total,
      floor(extract(epoch from (now() - min(created_at))))::bigint::text as age
    from chain_payouts where network = any(${names}::text[]) and status in ${q(QUEUE as unknown as string[])}
    group by network, status, asset`;
  return rows.map((r) => {
    const n = networks[r.name as string]!;
    const asset = nativeAsset(n);
    const queue = Object.fromEntries(QUEUE.map((s) => [s, 0])) as Record<(typeof QUEUE)[number], number>;
    let pending = 0n;
    let oldest: number | null = null;
    for (const g of queued.filter((g) => g.network === r.name)) {
      queue[g.status as (typeof QUEUE)[number]] += g.n as number;
      if (!(PENDING as readonly string[]).includes(g.status)) continue;
      if (g.asset === asset) pending += BigInt(g.total as string);
      oldest = Math.max(oldest ?? 0, Math.max(0, Number(g.age)));
    }
    const margin = feeMarginOf(n);
    const balance = r.hot_balance === null ? null : BigInt(r.hot_balance as string);
    return {
      name: r.name as string,
      kind: n.kind,
      asset,
      paused: r.paused === true,
      pausedBy: r.paused === true ? ((r.paused_by as "operator" | "runway" | null) ?? "operator") : null,
      pausedReason: r.paused === true ? text(r.paused_reason) : null,
      pausedAt: r.paused === true && r.paused_at ? iso(r.paused_at) : null,
      hotWallet: (r.address as string | null) ?? null,
      balance: balance === null ? null : formatAmount(balance, asset),
      balanceAt: r.hot_balance_at ? iso(r.hot_balance_at) : null,
      pendingOutflow: formatAmount(pending, asset),
      feeMargin: formatAmount(margin, asset),
      runway: balance === null ? null : formatAmount(balance - pending - margin, asset),
      queue,
      deadLetters: r.dead_letters as number,
      oldestPendingAgeSeconds: oldest,
      lastBlock: int(r.last_block),
      lastBlockAt: r.last_block_at ? iso(r.last_block_at) : null,
      chainNonce: int(r.chain_nonce),
      drift: text(r.drift),
    };
  });
}

/**
 * Pauses a network for an operator: its payouts wait, nothing fails. Pausing a paused network
 * changes nothing but who holds the pause (an operator's pause outlives the runway check's) and
 * answers the network as it is.
 */
export async function pauseNetwork(sql: Queryable, networks: Networks, name: string, actor: string, reason: string) {
  networkNamed(networks, name);
  const [before] = await sql`select paused, paused_by from chain_networks where network = ${name} for update`;
  const already = before?.paused === true && before.paused_by === "operator";
  if (!already) {
    await sql`insert into chain_networks (network, paused, paused_by, paused_reason, paused_at) values (${name}, true, 'operator', ${reason}, now())
      on conflict (network) do update set paused = true, paused_by = 'operator', paused_reason = excluded.paused_reason,
        paused_at = case when chain_networks.paused then chain_networks.paused_at else excluded.paused_at end`;
  }
  await audit(sql, actor, "network.pause", name, { changed: !already, before: stateOf(before), reason });
  return (await networkViews(sql, networks, [name]))[0]!;
}

/** Lets a network's payouts go on (whoever paused it; the runway check pauses it again if the hot wallet is still short). */
export async function resumeNetwork(sql: Queryable, networks: Networks, name: string, actor: string, note: string | undefined) {
  networkNamed(networks, name);
  const [before] = await sql`select paused, paused_by from chain_networks where network = ${name} for update`;
  const changed = before?.paused === true;
  if (changed) {
    await sql`update chain_networks set paused = false, paused_by = null, paused_reason = null, paused_at = null where network = ${name}`;
  }
  await audit(sql, actor, "network.resume", name, { changed, before: stateOf(before), ...(note ? { note } : {}) });
  return (await networkViews(sql, networks, [name]))[0]!;
}

const stateOf = (row: Row | undefined) => ({ paused: row?.paused === true, pausedBy: row?.paused === true ? (row.paused_by ?? null) : null });

// ---------------------------------------------------------------------------------------------
// Payouts

export interface PayoutQuery {
  status?: string | undefined;
  network?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

const PAYOUT_COLUMNS = (q: Queryable) => q`p.withdrawal_id, p.wallet_id, p.network, p.asset, p.amount::text as amount, p.status, p.parked_from,
  p.last_error, p.nonce::text as nonce, p.tx_hash, jsonb_array_length(p.attempts) as attempts, p.replacements, p.operator_action,
  p.operator_action_by, p.block_number::text as block_number, p.created_at, p.updated_at, w.destination -> 'masked' as destination`;

/**
 * Payouts newest first, a page at a time. The cursor is the last payout's withdrawal id; the next
 * page starts below its (created_at, withdrawal_id), compared by Postgres in its own types (a
 * timestamp to the microsecond and a uuid), never as text or through a JavaScript Date.
 */
export async function listPayouts(db: Db, q: PayoutQuery) {
  if (q.cursor && !(await db`select 1 from chain_payouts where withdrawal_id = ${q.cursor}`).length) throw new FieldError("cursor", "not a cursor this list gave");
  const rows = await db`select ${PAYOUT_COLUMNS(db)}
    from chain_payouts p left join withdrawals w on w.id = p.withdrawal_id
    where true
      ${q.status ? db`and p.status = ${q.status}` : db``}
      ${q.network ? db`and p.network = ${q.network}` : db``}
      ${q.cursor ? db`and (p.created_at, p.withdrawal_id) < (select created_at, withdrawal_id from chain_payouts where withdrawal_id = ${q.cursor})` : db``}
    order by p.created_at desc, p.withdrawal_id desc
    limit ${q.limit + 1}`;
  const page = rows.slice(0, q.limit);
  return { items: page.map(payoutView), nextCursor: rows.length > q.limit ? (page[page.length - 1]!.withdrawal_id as string) : null };
}

async function payoutById(q: Queryable, id: string) {
  const [row] = await q`select ${PAYOUT_COLUMNS(q)} from chain_payouts p left join withdrawals w on w.id = p.withdrawal_id where p.withdrawal_id = ${id}`;
  if (!row) throw new CofferError("NOT_FOUND", "no chain payout for this withdrawal");
  return payoutView(row);
}

function payoutView(r: Row) {
  const masked = r.destination as Record<string, unknown> | null;
  return {
    withdrawalId: r.withdrawal_id as string,
    walletId: r.wallet_id as string,
    network: r.network as string,
    asset: r.asset as string,
    amount: money(r.amount as string, r.asset as string),
    destination:
      masked && masked.type === "crypto"
        ? { type: "crypto" as const, network: String(masked.network), ...(typeof masked.address === "string" ? { address: masked.address } : {}) }
        : null,
    status: r.status as string,
    parkedFrom: (r.parked_from as string | null) ?? null,
    lastError: text(r.last_error),
    nonce: int(r.nonce),
    txHash: (r.tx_hash as string | null) ?? null,
    attempts: r.attempts as number,
    replacements: r.replacements as number,
    operatorAction: (r.operator_action as string | null) ?? null,
    operatorActionBy: (r.operator_action_by as string | null) ?? null,
    blockNumber: int(r.block_number),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

interface Locked {
  status: string;
  parked_from: string | null;
  /** A signed transaction is stored for it: it may be mined whatever happens next. */
  signed: boolean;
  operator_action: string | null;
}

/** The payout's row, locked until the caller's transaction ends (the worker's conditional updates wait for it). */
async function lockPayout(sql: Queryable, id: string): Promise<Locked> {
  const [row] = await sql`select status, parked_from, raw_tx is not null as signed, operator_action from chain_payouts where withdrawal_id = ${id} for update`;
  if (!row) throw new CofferError("NOT_FOUND", "no chain payout for this withdrawal");
  return row as unknown as Locked;
}

/**
 * Where a payout stands in the pipeline: its status, or for a parked one the status it was parked
 * from. A parked payout that does not say (or says `claimed`) but has a signed transaction stored
 * stands at `signed`: sending it back to `claimed` could sign a second transaction with a new nonce
 * while the first can still be mined.
 */
function standing(p: Locked): string {
  if (p.status !== "parked") return p.status;
  const from = p.parked_from !== null && RESUMABLE.has(p.parked_from) ? p.parked_from : "claimed";
  return from === "claimed" && p.signed ? "signed" : from;
}

function refused(detail: string): CofferError {
  return new CofferError("INVALID_TRANSITION", detail);
}

/**
 * Writes the change, conditional on the status read under the lock (so a change nobody expected
 * cannot be overwritten); a parked payout leaves `parked` for where it stood, its stage failures
 * cleared, and its open dead letters are settled as re-driven.
 */
async function change(sql: Queryable, id: string, p: Locked, actor: string, set: { status: string; operatorAction?: "replace" | "cancel" }): Promise<number> {
  const unparks = p.status === "parked";
  const [done] = await sql`update chain_payouts set status = ${set.status},
      ${set.operatorAction ? sql`operator_action = ${set.operatorAction}, operator_action_by = ${actor},` : sql``}
      ${unparks ? sql`parked_from = null, last_error = null, stage_failures = 0,` : sql``}
      next_attempt_at = now(), updated_at = now()
    where withdrawal_id = ${id} and status = ${p.status}
    returning 1 as one`;
  if (!done) throw refused(`the payout changed meanwhile (it was ${p.status}); read it again`);
  if (!unparks) return 0;
  const settled = await sql`update chain_dlq set status = 'redriven', settled_by = ${actor}, settled_at = now()
    where withdrawal_id = ${id} and status = 'open' returning id`;
  return settled.length;
}

/** Retry: a parked payout goes back to where it was parked from (or `claimed`, or `signed` when signed bytes are stored). */
export async function retryPayout(sql: Queryable, id: string, actor: string, note: string | undefined) {
  const p = await lockPayout(sql, id);
  if (p.status !== "parked") throw refused(`the payout is ${p.status}: only a parked payout can be retried`);
  const to = standing(p);
  const redriven = await change(sql, id, p, actor, { status: to });
  await audit(sql, actor, "payout.retry", id, { from: p.status, parkedFrom: p.parked_from, to, deadLettersRedriven: redriven, ...(note ? { note } : {}) });
  return payoutById(sql, id);
}

/**
 * Replace: the worker signs a replacement at the same nonce with higher fees. For a payout whose
 * transaction is signed or broadcast (or one parked there); a parked one goes back to where it stood.
 */
export async function replacePayout(sql: Queryable, id: string, actor: string, note: string | undefined) {
  const p = await lockPayout(sql, id);
  const at = standing(p);
  const signedThere = at === "signed" || at === "broadcast";
  if (!signedThere || (p.status === "parked" && !p.signed)) {
    throw refused(`the payout is ${describe(p)}: only a payout whose transaction is signed or broadcast (or one parked there) can be replaced`);
  }
  if (p.operator_action === "cancel") throw refused("the payout's cancellation is already asked for: it cannot be replaced too");
  const redriven = await change(sql, id, p, actor, { status: at, operatorAction: "replace" });
  await audit(sql, actor, "payout.replace", id, { from: p.status, parkedFrom: p.parked_from, to: at, deadLettersRedriven: redriven, ...(note ? { note } : {}) });
  return payoutById(sql, id);
}

/**
 * Cancel. Nothing signed (claimed, or parked without a signed transaction): the worker fails the
 * withdrawal and releases its hold. Signed or broadcast (or parked with a signed transaction): the
 * worker signs a 0-value send to the hot wallet itself at the payout's nonce, and the withdrawal
 * fails only once that cancellation is final. A confirmed payout was mined (nothing to cancel); one
 * already cancelling or over is refused too.
 */
export async function cancelPayout(sql: Queryable, id: string, actor: string, note: string | undefined) {
  const p = await lockPayout(sql, id);
  const at = standing(p);
  if (at !== "claimed" && at !== "signed" && at !== "broadcast") {
    throw refused(`the payout is ${describe(p)}: only a claimed, signed, broadcast or parked payout can be cancelled`);
  }
  const redriven = await change(sql, id, p, actor, { status: at, operatorAction: "cancel" });
  await audit(sql, actor, "payout.cancel", id, { from: p.status, parkedFrom: p.parked_from, to: at, signed: p.signed, deadLettersRedriven: redriven, ...(note ? { note } : {}) });
  return payoutById(sql, id);
}

const describe = (p: Locked) => (p.status === "parked" ? `parked (from ${standing(p)}${p.signed ? ", signed" : ", nothing signed"})` : p.status);

// ---------------------------------------------------------------------------------------------
// Dead letters

export interface DeadLetterQuery {
  network?: string | undefined;
  stage?: string | undefined;
  status: string;
  limit: number;
  cursor?: string | undefined;
}

const DEAD_LETTER_COLUMNS = (q: Queryable) =>
  q`d.id, d.withdrawal_id, d.network, d.stage, d.reason, d.attempts, d.status, p.status as payout_status, d.settled_by, d.settled_at, d.created_at`;

/** Dead letters newest first, a page at a time (the cursor is the last entry's id, compared as in listPayouts). */
export async function listDeadLetters(db: Db, q: DeadLetterQuery) {
  if (q.cursor && !(await db`select 1 from chain_dlq where id = ${q.cursor}`).length) throw new FieldError("cursor", "not a cursor this list gave");
  const rows = await db`select ${DEAD_LETTER_COLUMNS(db)}
    from chain_dlq d left join chain_payouts p on p.withdrawal_id = d.withdrawal_id
    where d.status = ${q.status}
      ${q.network ? db`and d.network = ${q.network}` : db``}
      ${q.stage ? db`and d.stage = ${q.stage}` : db``}
      ${q.cursor ? db`and (d.created_at, d.id) < (select created_at, id from chain_dlq where id = ${q.cursor})` : db``}
    order by d.created_at desc, d.id desc
    limit ${q.limit + 1}`;
  const page = rows.slice(0, q.limit);
  return { items: page.map(deadLetterView), nextCursor: rows.length > q.limit ? (page[page.length - 1]!.id as string) : null };
}

async function deadLetterById(q: Queryable, id: string) {
  const [row] = await q`select ${DEAD_LETTER_COLUMNS(q)} from chain_dlq d left join chain_payouts p on p.withdrawal_id = d.withdrawal_id where d.id = ${id}`;
  if (!row) throw new CofferError("NOT_FOUND", "no such dead letter");
  return deadLetterView(row);
}

function deadLetterView(r: Row) {
  return {
    id: r.id as string,
    withdrawalId: r.withdrawal_id as string,
    network: r.network as string,
    stage: r.stage as string,
    reason: text(r.reason) ?? "",
    attempts: r.attempts as number,
    status: r.status as string,
    payoutStatus: (r.payout_status as string | null) ?? null,
    settledBy: (r.settled_by as string | null) ?? null,
    settledAt: r.settled_at ? iso(r.settled_at) : null,
    createdAt: iso(r.created_at),
  };
}

/** The entry, locked; its payout is locked first (payout, then dead letters: the order every change here takes). */
async function lockDeadLetter(sql: Queryable, id: string): Promise<{ entry: Row; payout: Locked | undefined }> {
  const [found] = await sql`select withdrawal_id from chain_dlq where id = ${id}`;
  if (!found) throw new CofferError("NOT_FOUND", "no such dead letter");
  const payout = await lockPayout(sql, found.withdrawal_id as string).catch((error) => {
    if (error instanceof CofferError && error.code === "NOT_FOUND") return undefined;
    throw error;
  });
  const [entry] = await sql`select id, withdrawal_id, stage, status from chain_dlq where id = ${id} for update`;
  return { entry: entry!, payout };
}

/** Re-drive: an open entry is settled, and its parked payout goes back to where it was parked from, as a retry puts it. */
export async function redriveDeadLetter(sql: Queryable, id: string, actor: string, note: string | undefined) {
  const { entry, payout } = await lockDeadLetter(sql, id);
  if (entry.status !== "open") throw refused(`the dead letter is ${entry.status}: only an open one can be re-driven`);
  if (!payout || payout.status !== "parked") {
    throw refused(`its payout is ${payout?.status ?? "gone"}, not parked: nothing to re-drive (delete the dead letter instead)`);
  }
  const to = standing(payout);
  // Settles this entry and the payout's other open ones: the payout is no longer parked.
  const redriven = await change(sql, entry.withdrawal_id as string, payout, actor, { status: to });
  await audit(sql, actor, "dlq.redrive", id, { withdrawalId: entry.withdrawal_id, stage: entry.stage, payoutFrom: "parked", payoutTo: to, deadLettersRedriven: redriven, ...(note ? { note } : {}) });
  return deadLetterById(sql, id);
}

/** Delete: an open entry is settled as deleted; its payout stays parked. */
export async function deleteDeadLetter(sql: Queryable, id: string, actor: string, note: string | undefined) {
  const { entry, payout } = await lockDeadLetter(sql, id);
  if (entry.status !== "open") throw refused(`the dead letter is ${entry.status}: only an open one can be deleted`);
  await sql`update chain_dlq set status = 'deleted', settled_by = ${actor}, settled_at = now() where id = ${id} and status = 'open'`;
  await audit(sql, actor, "dlq.delete", id, { withdrawalId: entry.withdrawal_id, stage: entry.stage, payoutStatus: payout?.status ?? null, ...(note ? { note } : {}) });
  return deadLetterById(sql, id);
}

// ---------------------------------------------------------------------------------------------

async function audit(sql: Queryable, actor: string, action: string, subject: string, detail: Record<string, unknown>): Promise<void> {
  await sql`insert into chain_operator_audit (actor, action, subject, detail) values (${actor}, ${action}, ${subject}, ${sql.json(detail as never)})`;
}

function money(minor: string, asset: string): string {
  return isAsset(asset) ? formatAmount(BigInt(minor), asset) : BigInt(minor).toString();
}

/** Text the worker wrote (an RPC's error, a reason): clipped and redacted, so no key or full address rides along. */
function text(value: unknown): string | null {
  if (typeof value !== "string") return null;
  return redact(value.length > TEXT_MAX ? `${value.slice(0, TEXT_MAX)}…` : value);
}

/** A bigint column (sent as text) that holds a count or a height, not money: a JSON number. */
function int(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function iso(value: unknown): string {
  return (value instanceof Date ? value : new Date(String(value))).toISOString();
}
