import type { Db } from "../../lib/db";
import { isAsset, type Asset } from "../../lib/assets";
import { CofferError } from "../../lib/errors";
import { formatAmount } from "../../lib/money";
import { FieldError } from "../api/input";

/**
 * The admin API's view of money: every transaction across wallets and chamas, searched, and one
 * with everything known about it. A transaction is the thing a caller knows by id: a credit or a
 * payment (its journal), a card deposit, a transfer (or a contribution: a transfer into a chama), a
 * withdrawal, a chama deposit or a chama withdrawal.
 *
 * Bounded cost: a search covers at most SEARCH_RANGE_MAX_DAYS (the last SEARCH_RANGE_DEFAULT_DAYS
 * unless told), each kind is read newest first by its (created_at, id) index and stops at the page
 * size, a wallet or owner filter goes through the postings' (account) index for journals, and the
 * whole statement runs under a statement timeout.
 */
export const TRANSACTION_KINDS = ["credit", "payment", "deposit", "transfer", "contribution", "withdrawal", "chama_deposit", "chama_withdrawal"] as const;
export type TransactionKind = (typeof TRANSACTION_KINDS)[number];

export const SEARCH_RANGE_DEFAULT_DAYS = 7;
export const SEARCH_RANGE_MAX_DAYS = 31;
const DAY_MS = 86_400_000;
const STATEMENT_TIMEOUT_MS = 5_000;

export interface TransactionQuery {
  kind?: TransactionKind | undefined;
  status?: string | undefined;
  asset?: string | undefined;
  network?: string | undefined;
  walletId?: string | undefined;
  chamaId?: string | undefined;
  ownerId?: string | undefined;
  reference?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** The time range a search covers: [from, to), at most `maxDays` long; `field` names what is wrong. */
export function rangeOf(q: { from?: string | undefined; to?: string | undefined }, defaultDays: number, maxDays: number): { from: Date; to: Date } {
  const to = q.to ? new Date(q.to) : new Date();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - defaultDays * DAY_MS);
  if (from.getTime() >= to.getTime()) throw new FieldError("from", "from must be before to");
  if (to.getTime() - from.getTime() > maxDays * DAY_MS) throw new FieldError("from", `a range covers at most ${maxDays} days`);
  return { from, to };
}

/** The cursor: where the last page ended, (created_at, id), opaque to callers. */
function decodeCursor(cursor: string): { at: Date; id: string } {
  try {
    const [at, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
    const date = new Date(at ?? "");
    if (Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(id ?? "")) throw new Error("bad");
    return { at: date, id: id! };
  } catch {
    throw new FieldError("cursor", "not a cursor this search gave");
  }
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`, "utf8").toString("base64url");
}

interface Row {
  id: string;
  kind: string;
  status: string;
  asset: string;
  amount: string | null;
  wallet_id: string | null;
  chama_id: string | null;
  owner_id: string | null;
  to_wallet_id: string | null;
  to_chama_id: string | null;
  network: string | null;
  reference: string | null;
  created_at: Date;
  updated_at: Date;
}

const fmt = (minor: string | null, asset: string) => (minor === null ? "0" : isAsset(asset) ? formatAmount(BigInt(minor), asset as Asset) : minor);

export function transactionView(r: Row) {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    asset: r.asset,
    amount: fmt(r.amount, r.asset),
    ...(r.wallet_id ? { walletId: r.wallet_id } : {}),
    ...(r.chama_id ? { chamaId: r.chama_id } : {}),
    ...(r.owner_id ? { ownerId: r.owner_id } : {}),
    ...(r.to_wallet_id || r.to_chama_id ? { counterparty: r.to_wallet_id ? { walletId: r.to_wallet_id } : { chamaId: r.to_chama_id! } } : {}),
    ...(r.network ? { network: r.network } : {}),
    ...(r.reference ? { reference: r.reference } : {}),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** Which kinds a query can find at all: a filter a kind does not have (a network for a payment) rules it out. */
function kindsFor(q: TransactionQuery): TransactionKind[] {
  return TRANSACTION_KINDS.filter((kind) => {
    if (q.kind && q.kind !== kind) return false;
    const journal = kind === "credit" || kind === "payment" || kind === "chama_deposit";
    const payout = kind === "withdrawal" || kind === "chama_withdrawal";
    if (q.network && !payout) return false;
    if (q.reference && !journal) return false;
    if (q.status && journal && q.status !== "posted") return false;
    if (q.chamaId && !(kind === "chama_deposit" || kind === "chama_withdrawal" || kind === "contribution")) return false;
    if (q.walletId && kind === "chama_deposit") return false;
    return true;
  });
}

/**
 * Every transaction matching the filters, newest first, a page at a time. Each kind contributes at
 * most a page from its own index; the merged page is the newest of those.
 */
export async function searchTransactions(db: Db, q: TransactionQuery) {
  const { from, to } = rangeOf(q, SEARCH_RANGE_DEFAULT_DAYS, SEARCH_RANGE_MAX_DAYS);
  const after = q.cursor ? decodeCursor(q.cursor) : undefined;
  const n = q.limit + 1;
  const rows = await db.begin(async (sql) => {
    await sql`select set_config('statement_timeout', ${String(STATEMENT_TIMEOUT_MS)}, true)`;
    const inRange = (t: string) => sql`${sql(t)}.created_at >= ${from} and ${sql(t)}.created_at < ${to}
      ${after ? sql`and (${sql(t)}.created_at, ${sql(t)}.id) < (${after.at}, ${after.id}::uuid)` : sql``}`;
    const eq = (column: ReturnType<typeof sql>, value: string | undefined) => (value === undefined ? sql`true` : sql`${column} = ${value}`);
    const branches = kindsFor(q).map((kind) => {
      switch (kind) {
        case "credit":
        case "payment":
        case "chama_deposit": {
          const account = q.walletId ?? q.chamaId;
          return sql`(select j.id, j.kind, 'posted' as status, j.asset,
              (select m.amount::text from movements m where m.journal_id = j.id and m.leg = 0) as amount,
              case when j.kind = 'chama_deposit' then null else j.wallet_id end as wallet_id,
              case when j.kind = 'chama_deposit' then j.wallet_id end as chama_id,
              w.owner_id, null::uuid as to_wallet_id, null::uuid as to_chama_id, null::text as network, j.reference, j.created_at, j.created_at as updated_at
            from journals j left join wallets w on w.id = j.wallet_id
            where j.kind = ${kind} and ${inRange("j")}
              and ${eq(sql`j.asset`, q.asset)} and ${eq(sql`j.reference`, q.reference)}
              ${account ? sql`and j.wallet_id = ${account}` : sql``}
              ${q.ownerId ? sql`and j.wallet_id in (select id from wallets where owner_id = ${q.ownerId})` : sql``}
            order by j.created_at desc, j.id desc limit ${n})`;
        }
        case "deposit":
          return sql`(select d.id, 'deposit' as kind, d.status, d.asset, d.amount::text as amount, d.wallet_id, null::uuid as chama_id, d.owner_id,
              null::uuid as to_wallet_id, null::uuid as to_chama_id, null::text as network, null::text as reference, d.created_at, d.updated_at
            from deposits d
            where ${inRange("d")} and ${eq(sql`d.status`, q.status)} and ${eq(sql`d.asset`, q.asset)} and ${eq(sql`d.wallet_id::text`, q.walletId)} and ${eq(sql`d.owner_id`, q.ownerId)}
            order by d.created_at desc, d.id desc limit ${n})`;
        case "transfer":
        case "contribution":
          return sql`(select t.id, ${kind}::text as kind, t.status, t.asset, t.amount::text as amount, t.from_wallet_id as wallet_id, null::uuid as chama_id, w.owner_id,
              t.to_wallet_id, t.to_chama_id, null::text as network, null::text as reference, t.created_at, t.updated_at
            from transfers t join wallets w on w.id = t.from_wallet_id
            where ${inRange("t")} and ${kind === "transfer" ? sql`t.to_wallet_id is not null` : sql`t.to_chama_id is not null`}
              and ${eq(sql`t.status`, q.status)} and ${eq(sql`t.asset`, q.asset)} and ${eq(sql`w.owner_id`, q.ownerId)}
              ${q.walletId ? sql`and (t.from_wallet_id = ${q.walletId} or t.to_wallet_id = ${q.walletId})` : sql``}
              ${q.chamaId ? sql`and t.to_chama_id = ${q.chamaId}` : sql``}
            order by t.created_at desc, t.id desc limit ${n})`;
        case "withdrawal":
          return sql`(select d.id, 'withdrawal' as kind, d.status, d.asset, d.amount::text as amount, d.wallet_id, null::uuid as chama_id, w.owner_id,
              null::uuid as to_wallet_id, null::uuid as to_chama_id, coalesce(d.destination->'masked'->>'network', d.destination->'masked'->>'type') as network,
              null::text as reference, d.created_at, d.updated_at
            from withdrawals d join wallets w on w.id = d.wallet_id
            where ${inRange("d")} and ${eq(sql`d.status`, q.status)} and ${eq(sql`d.asset`, q.asset)} and ${eq(sql`w.owner_id`, q.ownerId)}
              and ${eq(sql`d.wallet_id::text`, q.walletId)}
              and ${eq(sql`coalesce(d.destination->'masked'->>'network', d.destination->'masked'->>'type')`, q.network)}
            order by d.created_at desc, d.id desc limit ${n})`;
        case "chama_withdrawal":
          return sql`(select c.id, 'chama_withdrawal' as kind, c.status, c.asset, c.amount::text as amount, null::uuid as wallet_id, c.chama_id, c.member_id as owner_id,
              c.to_wallet_id, null::uuid as to_chama_id, coalesce(c.destination->'masked'->>'network', c.destination->'masked'->>'type') as network,
              null::text as reference, c.created_at, c.updated_at
            from chama_withdrawals c
            where ${inRange("c")} and ${eq(sql`c.status`, q.status)} and ${eq(sql`c.asset`, q.asset)} and ${eq(sql`c.member_id`, q.ownerId)}
              and ${eq(sql`c.chama_id::text`, q.chamaId)} and ${eq(sql`c.to_wallet_id::text`, q.walletId)}
              and ${eq(sql`coalesce(c.destination->'masked'->>'network', c.destination->'masked'->>'type')`, q.network)}
            order by c.created_at desc, c.id desc limit ${n})`;
      }
    });
    if (!branches.length) return [] as Row[];
    const union = branches.reduce((all, branch) => sql`${all} union all ${branch}`);
    return (await sql`select * from (${union}) t order by created_at desc, id desc limit ${n}`) as unknown as Row[];
  });
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(transactionView),
    nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_at, last.id) : null,
  };
}

/**
 * One transaction with everything known about it: its summary (as the search shows it), its
 * journals with their postings, its state history (every committed event about it, as monitoring
 * recorded it), and the ids other systems know it by (Stripe's; a chain's once payouts go on chain).
 */
export async function getTransaction(db: Db, transactionId: string) {
  const found = await findTransaction(db, transactionId);
  if (!found) throw new CofferError("NOT_FOUND", "transaction not found");
  const journals = await db`select id, kind, asset, wallet_id, reference, created_at from journals
    where id = ${transactionId} or (source_id = ${transactionId} and source_id <> id) order by created_at, id limit 100`;
  const ids = journals.map((j) => j.id as string);
  const postings = ids.length ? await db`select journal_id, account, asset, amount::text as amount from postings where journal_id in ${db(ids)} order by id` : [];
  const history = await db`select seq::text as seq, type, status, journal_id, at from transaction_history where object_id = ${transactionId} order by transaction_history.seq limit 200`;
  const asset = found.asset;
  return {
    ...transactionView(found),
    journals: journals.map((j) => ({
      id: j.id as string,
      kind: j.kind as string,
      asset: j.asset as string,
      ...(j.reference ? { reference: j.reference as string } : {}),
      createdAt: (j.created_at as Date).toISOString(),
      postings: postings.filter((p) => p.journal_id === j.id).map((p) => ({ account: p.account as string, amount: fmt(p.amount as string, asset) })),
    })),
    history: history.map((h) => ({ type: h.type as string, ...(h.status ? { status: h.status as string } : {}), ...(h.journal_id ? { journalId: h.journal_id as string } : {}), at: (h.at as Date).toISOString() })),
    external: await externalIdsOf(db, found),
  };
}

async function findTransaction(db: Db, id: string): Promise<Row | undefined> {
  const [row] = (await db`
    select d.id, 'withdrawal' as kind, d.status, d.asset, d.amount::text as amount, d.wallet_id, null::uuid as chama_id, w.owner_id, null::uuid as to_wallet_id, null::uuid as to_chama_id,
      coalesce(d.destination->'masked'->>'network', d.destination->'masked'->>'type') as network, null::text as reference, d.created_at, d.updated_at
      from withdrawals d join wallets w on w.id = d.wallet_id where d.id = ${id}
    union all
    select c.id, 'chama_withdrawal', c.status, c.asset, c.amount::text, null, c.chama_id, c.member_id, c.to_wallet_id, null,
      coalesce(c.destination->'masked'->>'network', c.destination->'masked'->>'type'), null, c.created_at, c.updated_at
      from chama_withdrawals c where c.id = ${id}
    union all
    select t.id, case when t.to_chama_id is null then 'transfer' else 'contribution' end, t.status, t.asset, t.amount::text, t.from_wallet_id, null, w.owner_id, t.to_wallet_id, t.to_chama_id,
      null, null, t.created_at, t.updated_at
      from transfers t join wallets w on w.id = t.from_wallet_id where t.id = ${id}
    union all
    select d.id, 'deposit', d.status, d.asset, d.amount::text, d.wallet_id, null, d.owner_id, null, null, null, null, d.created_at, d.updated_at
      from deposits d where d.id = ${id}
    union all
    select j.id, j.kind, 'posted', j.asset, (select m.amount::text from movements m where m.journal_id = j.id and m.leg = 0),
      case when j.kind = 'chama_deposit' then null else j.wallet_id end, case when j.kind = 'chama_deposit' then j.wallet_id end, w.owner_id, null, null,
      null, j.reference, j.created_at, j.created_at
      from journals j left join wallets w on w.id = j.wallet_id where j.id = ${id} and j.kind in ('credit', 'payment', 'chama_deposit')
    limit 1`) as unknown as Row[];
  return row;
}

/**
 * What Stripe (and, once payouts go on chain, a chain) knows this transaction by. Tables of rails
 * that are not installed are skipped; a chain integration adds its transaction hashes here.
 */
async function externalIdsOf(db: Db, t: Row): Promise<{ system: string; kind: string; id: string; status?: string }[]> {
  const out: { system: string; kind: string; id: string; status?: string }[] = [];
  if (t.kind === "deposit") {
    const [d] = await db`select payment_intent_id from deposits where id = ${t.id}`;
    if (d) out.push({ system: "stripe", kind: "payment_intent", id: d.payment_intent_id as string });
    for (const r of await db`select stripe_refund_id, status from deposit_refunds where deposit_id = ${t.id} and stripe_refund_id is not null order by created_at limit 50`) {
      out.push({ system: "stripe", kind: "refund", id: r.stripe_refund_id as string, status: r.status as string });
    }
    for (const r of await db`select id, status from deposit_disputes where deposit_id = ${t.id} order by created_at limit 50`) {
      out.push({ system: "stripe", kind: "dispute", id: r.id as string, status: r.status as string });
    }
  }
  if (t.kind === "withdrawal") {
    const [{ present }] = (await db`select to_regclass('withdrawal_payouts') is not null as present`) as unknown as [{ present: boolean }];
    if (present) {
      for (const p of await db`select kind, stripe_id, status from withdrawal_payouts where withdrawal_id = ${t.id} and stripe_id is not null`) {
        out.push({ system: "stripe", kind: p.kind as string, id: p.stripe_id as string, status: p.status as string });
      }
    }
  }
  return out;
}
