-- One write path for every aggregate (issue 16). Wallets, chamas and deposits (and the chain
-- pipeline's fee journals, with no aggregate at all) write idempotency records, their own rows,
-- movements (the ledger), the rows SQL reads, and outbox events through this ONE function, called
-- as one statement per group commit (actors/write-path.ts builds its argument). Aggregates of
-- different kinds share a group commit the way wallets always did.
--
-- batch = {wallets, chamas, deposits: aggregate rows, each with from_version (0: create) and
--          to_version; movements (the ledger); withdrawals, transfers (wallets); chama_members,
--          chama_withdrawals, chama_reviews, chama_audit (chamas); deposit_refunds,
--          deposit_disputes (deposits); events (outbox, with their worker marks); ordered: how many
--          movements and events there are, each numbered `n` in the order of the effects}
-- keys  = the idempotency records (json, not jsonb: a replay answers the first body byte for byte).
--
-- Keys and versions are checked first; if a key was already taken or an aggregate's version moved
-- (fencing), it raises SQLSTATE CF409 with {"taken": [...], "fenced": [...]} as DETAIL and nothing
-- at all is written. This replaces coffer_commit of 011_stripe_payouts.sql (same contract, more
-- kinds); a later change to it starts from this definition.
-- Fewer rows per money movement (issue 16): a journal is stored as movements, each ONE row
-- carrying its debit and credit accounts (as TigerBeetle's transfers do), instead of a journal row
-- plus two posting rows. Every journal Coffer makes moves one amount between two accounts (machines/
-- journal.ts `move`), so it is one movement (`leg` 0); a journal of more postings would be split
-- into several legs by actors/write-path.ts. Balanced by construction: a movement cannot take from
-- one account what it does not give to another.
--
-- `seq` is the ledger's own order. `wallet_id` is the aggregate that wrote the journal (a wallet, a
-- chama, or a hot wallet's row for network fees); every movement touches only system accounts and
-- that aggregate's own account, which the verifier checks, so an aggregate's history is one index
-- range on (wallet_id, seq), and system accounts, which nobody pages through, have no per-row
-- history index at all.
create table movements (
  -- One sequence for the ledger and the outbox (see "Events" below).
  seq         bigint primary key default nextval('outbox_seq_seq'),
  journal_id  uuid not null,
  leg         smallint not null default 0,
  kind        text not null,
  asset       text not null,
  wallet_id   uuid not null,
  reference   text,
  source_kind text,
  source_id   uuid,
  -- The account the amount leaves (its posting is -amount) and the one it arrives at (+amount).
  debit       text not null,
  credit      text not null,
  amount      numeric(78,0) not null check (amount > 0),
  created_at  timestamptz not null,
  -- The domain event the movement's effect was (a payment made, a credit), when no worker must act
  -- on it: then the ledger row IS the event, one row instead of two. Events that ask a worker for a
  -- step (transfer, deposit, payout) stay in `outbox` with their marks.
  event_id      uuid,
  event_type    text,
  event_payload jsonb,
  xid           xid8 not null default pg_current_xact_id(),
  check (debit <> credit),
  check ((event_id is null) = (event_type is null) and (event_type is null) = (event_payload is null))
);
-- A journal id is taken once (saga steps derive theirs from the step, and rely on that).
create unique index movements_journal on movements (journal_id, leg);
create index movements_wallet on movements (wallet_id, seq);
-- The admin list, newest first.
create index movements_created on movements (created_at desc, journal_id desc) where leg = 0;
-- A transfer's or a withdrawal's journals by its id; a credit or a payment is its own source and needs no entry.
create index movements_source on movements (source_id) where source_id <> journal_id;

-- Readers of events (the relay, webhooks, monitoring) read in (xid, seq) order: see "Events" below.
create index movements_events on movements (xid, seq) where event_type is not null;

-- What was written before: every journal so far has two postings of opposite amounts.
do $$
begin
  if exists (select 1 from postings group by journal_id having count(*) <> 2 or sum(amount) <> 0 or min(amount) >= 0) then
    raise exception 'a journal that is not one movement between two accounts: split it by hand before this migration';
  end if;
end
$$;
insert into movements (journal_id, leg, kind, asset, wallet_id, reference, source_kind, source_id, debit, credit, amount, created_at, xid)
select j.id, 0, j.kind, j.asset, j.wallet_id, j.reference, j.source_kind, j.source_id, d.account, c.account, c.amount, j.created_at,
  pg_current_xact_id()
from journals j
join postings d on d.journal_id = j.id and d.amount < 0
join postings c on c.journal_id = j.id and c.amount > 0
order by j.created_at, j.id;

drop table postings;
drop table journals;

-- Readers keep the journal-and-postings shape: a journal is its first leg, each movement two postings.
create view journals as
  select journal_id as id, kind, asset, wallet_id, reference, source_kind, source_id, created_at
  from movements where leg = 0;
create view postings as
  select seq * 2 as id, journal_id, debit as account, asset, -amount as amount from movements
  union all
  select seq * 2 + 1, journal_id, credit, asset, amount from movements;


-- Events. Every domain event is a row of `events`: the outbox's, and the movements that carry
-- theirs. Outbox and movements take `seq` from one sequence, and every row records the transaction
-- that wrote it (`xid`). Readers (the JetStream relay, webhook fan-out, monitoring) keep a cursor
-- and read in (xid, seq) order only what transactions older than every one still running wrote
-- (`xid < pg_snapshot_xmin(pg_current_snapshot())`), as monitoring has since 013: that set never
-- grows behind a cursor, so no row is ever updated to say it was read (the relay's `published_at`
-- and webhooks' `webhooks_pending` marks are no longer written: each cost an update per event).
create view events as
  select seq, id, aggregate_id, type, payload, created_at, xid from outbox where xid is not null
  union all
  select seq, event_id, wallet_id, event_type, event_payload, created_at, xid from movements where event_type is not null;

create table event_cursors (
  -- relay | webhooks
  name       text primary key,
  xid        xid8 not null,
  seq        bigint not null,
  updated_at timestamptz not null default now()
);
-- Each starts right before the first event its mark says is still to do, or after everything.
insert into event_cursors (name, xid, seq)
select 'relay', coalesce(first.xid, pg_current_xact_id()), coalesce(first.seq - 1, (select coalesce(max(seq), 0) from outbox))
from (select 1) one left join lateral (select xid, seq from outbox where xid is not null and published_at is null order by xid, seq limit 1) first on true;
insert into event_cursors (name, xid, seq)
select 'webhooks', coalesce(first.xid, pg_current_xact_id()), coalesce(first.seq - 1, (select coalesce(max(seq), 0) from outbox))
from (select 1) one left join lateral (select xid, seq from outbox where xid is not null and webhooks_pending order by xid, seq limit 1) first on true;
drop index outbox_unpublished;
drop index outbox_webhooks_pending;
alter table outbox alter column webhooks_pending set default false;

create or replace function coffer_commit(batch jsonb, keys json) returns void
language plpgsql as $$
declare
  taken   jsonb;
  fenced  jsonb;
  written uuid[];
  seqs    bigint[];
begin
  with wanted as (
    select * from json_to_recordset(keys)
      as k(scope text, key text, fingerprint text, status int, body json)
  ), inserted as (
    insert into idempotency_keys (scope, key, fingerprint, status, body)
    select scope, key, fingerprint, status, body from wanted order by scope, key
    on conflict do nothing
    returning scope, key
  )
  select jsonb_agg(jsonb_build_object('scope', w.scope, 'key', w.key)) into taken
  from wanted w
  where not exists (select 1 from inserted i where i.scope = w.scope and i.key = w.key);

  -- Each aggregate row: an update guarded by the version its actor loaded, or (from_version 0) an
  -- insert that must not find the row there. What was not written is fenced.
  with wallet_rows as (
    select * from jsonb_to_recordset(batch->'wallets')
      as v(id uuid, from_version bigint, to_version bigint, owner_id text, asset text, status text, posted numeric, held numeric,
           machine_version int, snapshot jsonb, created_at timestamptz, updated_at timestamptz)
  ), wallet_updated as (
    update wallets w
    set status = v.status, posted = v.posted, held = v.held, version = v.to_version, snapshot = v.snapshot,
        updated_at = case when v.to_version > w.version then v.updated_at else w.updated_at end
    from wallet_rows v
    where v.from_version > 0 and w.id = v.id and w.version = v.from_version
    returning w.id
  ), wallet_created as (
    insert into wallets (id, owner_id, asset, status, posted, held, version, machine_version, snapshot, created_at, updated_at)
    select id, owner_id, asset, status, posted, held, 1, machine_version, snapshot, created_at, updated_at
    from wallet_rows where from_version = 0
    on conflict do nothing
    returning id
  ), chama_rows as (
    select * from jsonb_to_recordset(batch->'chamas')
      as v(id uuid, from_version bigint, to_version bigint, name text, asset text, status text, created_by text, posted numeric,
           held numeric, machine_version int, snapshot jsonb, created_at timestamptz, updated_at timestamptz)
  ), chama_updated as (
    update chamas c
    set status = v.status, posted = v.posted, held = v.held, version = v.to_version, snapshot = v.snapshot,
        updated_at = case when v.to_version > c.version then v.updated_at else c.updated_at end
    from chama_rows v
    where v.from_version > 0 and c.id = v.id and c.version = v.from_version
    returning c.id
  ), chama_created as (
    insert into chamas (id, name, asset, status, created_by, posted, held, version, machine_version, snapshot, created_at, updated_at)
    select id, name, asset, status, created_by, posted, held, 1, machine_version, snapshot, created_at, updated_at
    from chama_rows where from_version = 0
    on conflict do nothing
    returning id
  ), deposit_rows as (
    select * from jsonb_to_recordset(batch->'deposits')
      as v(id uuid, from_version bigint, to_version bigint, wallet_id uuid, owner_id text, asset text, amount numeric, status text,
           payment_intent_id text, received numeric, refunded numeric, disputed numeric, machine_version int, snapshot jsonb,
           created_at timestamptz, updated_at timestamptz)
  ), deposit_updated as (
    update deposits d
    set status = v.status, received = v.received, refunded = v.refunded, disputed = v.disputed, version = v.to_version,
        snapshot = v.snapshot, updated_at = case when v.to_version > d.version then v.updated_at else d.updated_at end
    from deposit_rows v
    where v.from_version > 0 and d.id = v.id and d.version = v.from_version
    returning d.id
  ), deposit_created as (
    insert into deposits (id, wallet_id, owner_id, asset, amount, status, payment_intent_id, received, refunded, disputed,
                          version, machine_version, snapshot, created_at, updated_at)
    select id, wallet_id, owner_id, asset, amount, status, payment_intent_id, received, refunded, disputed,
           1, machine_version, snapshot, created_at, updated_at
    from deposit_rows where from_version = 0
    on conflict do nothing
    returning id
  )
  select array_agg(id) into written from (
    select id from wallet_updated union all select id from wallet_created
    union all select id from chama_updated union all select id from chama_created
    union all select id from deposit_updated union all select id from deposit_created
  ) w;

  select jsonb_agg(a.id) into fenced
  from (
    select (e->>'id')::uuid as id
    from jsonb_array_elements(coalesce(batch->'wallets', '[]') || coalesce(batch->'chamas', '[]') || coalesce(batch->'deposits', '[]')) e
  ) a
  where a.id <> all (coalesce(written, '{}'));

  if taken is not null or fenced is not null then
    raise exception using
      errcode = 'CF409',
      message = 'coffer batch conflict',
      detail = jsonb_build_object('taken', coalesce(taken, '[]'::jsonb), 'fenced', coalesce(fenced, '[]'::jsonb))::text;
  end if;

  -- Sequence numbers for the batch's movements and outbox events in the order of its effects (each
  -- row's `n`, 1..`ordered`): an aggregate's events keep their order across both tables.
  seqs := array(select nextval('outbox_seq_seq') from generate_series(1, coalesce((batch->>'ordered')::int, 0)));

  insert into movements (seq, journal_id, leg, kind, asset, wallet_id, reference, source_kind, source_id, debit, credit, amount, created_at,
                         event_id, event_type, event_payload)
  select seqs[n], journal_id, leg, kind, asset, wallet_id, reference, source_kind, source_id, debit, credit, amount, created_at,
         event_id, event_type, event_payload
  from jsonb_to_recordset(batch->'movements')
    as m(n int, journal_id uuid, leg smallint, kind text, asset text, wallet_id uuid, reference text, source_kind text, source_id uuid,
         debit text, credit text, amount numeric, created_at timestamptz, event_id uuid, event_type text, event_payload jsonb);

  -- Wallets' rows.
  insert into withdrawals (id, wallet_id, asset, amount, status, destination, reason, created_at, updated_at)
  select id, wallet_id, asset, amount, status, destination, reason, created_at, updated_at
  from jsonb_to_recordset(batch->'withdrawals')
    as w(id uuid, wallet_id uuid, asset text, amount numeric, status text, destination jsonb, reason text,
         created_at timestamptz, updated_at timestamptz)
  on conflict (id) do update
    set status = excluded.status, reason = coalesce(excluded.reason, withdrawals.reason), updated_at = excluded.updated_at;

  insert into transfers (id, from_wallet_id, to_wallet_id, to_chama_id, asset, amount, status, reason, created_at, updated_at)
  select id, from_wallet_id, to_wallet_id, to_chama_id, asset, amount, status, reason, created_at, updated_at
  from jsonb_to_recordset(batch->'transfers')
    as t(id uuid, from_wallet_id uuid, to_wallet_id uuid, to_chama_id uuid, asset text, amount numeric, status text, reason text,
         created_at timestamptz, updated_at timestamptz)
  on conflict (id) do update
    set status = excluded.status, reason = coalesce(excluded.reason, transfers.reason), updated_at = excluded.updated_at;

  -- Chamas' rows.
  insert into chama_members (chama_id, member_id, role, status, contributed, withdrawn, updated_at)
  select chama_id, member_id, role, status, contributed, withdrawn, updated_at
  from jsonb_to_recordset(batch->'chama_members')
    as m(chama_id uuid, member_id text, role text, status text, contributed numeric, withdrawn numeric, updated_at timestamptz)
  on conflict (chama_id, member_id) do update
    set role = excluded.role, status = excluded.status, contributed = excluded.contributed, withdrawn = excluded.withdrawn,
        updated_at = excluded.updated_at;

  insert into chama_withdrawals (id, chama_id, member_id, asset, amount, status, destination, to_wallet_id, approvals, rejections,
                                 reason, expires_at, created_at, updated_at)
  select id, chama_id, member_id, asset, amount, status, destination, to_wallet_id, approvals, rejections,
         reason, expires_at, created_at, updated_at
  from jsonb_to_recordset(batch->'chama_withdrawals')
    as w(id uuid, chama_id uuid, member_id text, asset text, amount numeric, status text, destination jsonb, to_wallet_id uuid,
         approvals jsonb, rejections jsonb, reason text, expires_at timestamptz, created_at timestamptz, updated_at timestamptz)
  on conflict (id) do update
    set status = excluded.status, approvals = excluded.approvals, rejections = excluded.rejections,
        reason = coalesce(excluded.reason, chama_withdrawals.reason), updated_at = excluded.updated_at
    where (chama_withdrawals.status, chama_withdrawals.approvals, chama_withdrawals.rejections)
      is distinct from (excluded.status, excluded.approvals, excluded.rejections);

  insert into chama_reviews (withdrawal_id, chama_id, reviewer_id, decision, note, status, at)
  select r.withdrawal_id, r.chama_id, r.reviewer_id, r.decision, r.note, r.status, r.at
  from jsonb_array_elements(batch->'chama_reviews') with ordinality as e(doc, n)
  cross join lateral jsonb_to_record(e.doc)
    as r(withdrawal_id uuid, chama_id uuid, reviewer_id text, decision text, note text, status text, at timestamptz)
  order by e.n;

  insert into chama_audit (chama_id, actor, action, target, before, after, note, via, at)
  select a.chama_id, a.actor, a.action, a.target, a.before, a.after, a.note, a.via, a.at
  from jsonb_array_elements(batch->'chama_audit') with ordinality as e(doc, n)
  cross join lateral jsonb_to_record(e.doc)
    as a(chama_id uuid, actor text, action text, target text, before jsonb, after jsonb, note text, via text, at timestamptz)
  order by e.n;

  -- Deposits' rows.
  insert into deposit_refunds (id, deposit_id, amount, status, external, stripe_refund_id, reason, created_at, updated_at)
  select id, deposit_id, amount, status, external, stripe_refund_id, reason, created_at, updated_at
  from jsonb_to_recordset(batch->'deposit_refunds')
    as r(id uuid, deposit_id uuid, amount numeric, status text, external boolean, stripe_refund_id text, reason text,
         created_at timestamptz, updated_at timestamptz)
  on conflict (id) do update
    set status = excluded.status, stripe_refund_id = excluded.stripe_refund_id, reason = excluded.reason, updated_at = excluded.updated_at;

  insert into deposit_disputes (id, deposit_id, amount, status, reason, created_at, updated_at)
  select id, deposit_id, amount, status, reason, created_at, updated_at
  from jsonb_to_recordset(batch->'deposit_disputes')
    as d(id text, deposit_id uuid, amount numeric, status text, reason text, created_at timestamptz, updated_at timestamptz)
  on conflict (id) do update set status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at;

  insert into outbox (seq, id, aggregate_id, type, payload, created_at, saga_pending, payout_pending, deposit_pending)
  select seqs[o.n], o.id, o.aggregate_id, o.type, o.payload, o.created_at, coalesce(o.saga_pending, false), coalesce(o.payout_pending, false),
         coalesce(o.deposit_pending, false)
  from jsonb_to_recordset(batch->'events')
    as o(n int, id uuid, aggregate_id uuid, type text, payload jsonb, created_at timestamptz, saga_pending boolean, payout_pending boolean,
         deposit_pending boolean);
end
$$;
