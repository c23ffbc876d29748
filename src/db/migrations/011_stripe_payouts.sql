-- Bank payouts through Stripe (src/workers/payout-worker.ts).
--
-- A withdrawal to a destination Stripe holds (`bank_token`: a payout; `stripe_account`: a Connect
-- transfer) is marked in the outbox when it is requested, in the same commit as its hold
-- (`payout_pending`, as transfer steps use saga_pending and deposit steps deposit_pending). The
-- payout worker takes marked withdrawals, sends them to Stripe under the withdrawal's own
-- idempotency key, and clears the mark once the withdrawal has ended; a restart resumes it.
alter table outbox add column payout_pending boolean not null default false;
create index outbox_payout_pending on outbox (seq) where payout_pending;

-- What Stripe made for a withdrawal: one row per withdrawal, written by the payout worker before it
-- asks Stripe (`sending`) and when Stripe answers or reports (`pending`, `paid`, `failed`,
-- `canceled`, `refused`: Stripe would not make it). `stripe_id` is the payout's (po_…) or the
-- transfer's (tr_…) id. Reconciliation matches Stripe's lists against it and the withdrawals.
create table withdrawal_payouts (
  withdrawal_id uuid primary key references withdrawals (id),
  wallet_id     uuid not null,
  -- payout | transfer
  kind          text not null,
  stripe_id     text unique,
  status        text not null,
  failure_code  text,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now()
);

-- coffer_commit as in 008_journal_sources.sql, writing each event's payout_pending mark. A later
-- change to coffer_commit starts from this definition.
create or replace function coffer_commit(batch jsonb, keys json) returns void
language plpgsql as $$
declare
  taken  jsonb;
  fenced jsonb;
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

  with updated as (
    update wallets w
    set status = v.status, posted = v.posted, held = v.held, version = v.to_version, snapshot = v.snapshot,
        updated_at = case when v.to_version > w.version then v.updated_at else w.updated_at end
    from jsonb_to_recordset(batch->'updates')
      as v(id uuid, from_version bigint, to_version bigint, status text, posted numeric, held numeric,
           snapshot jsonb, updated_at timestamptz)
    where w.id = v.id and w.version = v.from_version
    returning w.id
  ), created as (
    insert into wallets (id, owner_id, asset, status, posted, held, version, machine_version, snapshot, created_at, updated_at)
    select id, owner_id, asset, status, posted, held, 1, machine_version, snapshot, created_at, updated_at
    from jsonb_to_recordset(batch->'creates')
      as v(id uuid, owner_id text, asset text, status text, posted numeric, held numeric, machine_version int,
           snapshot jsonb, created_at timestamptz, updated_at timestamptz)
    on conflict do nothing
    returning id
  ), asked as (
    select (e->>'id')::uuid as id from jsonb_array_elements(batch->'updates') e
    union all
    select (e->>'id')::uuid from jsonb_array_elements(batch->'creates') e
  )
  select jsonb_agg(a.id) into fenced
  from asked a
  where a.id not in (select id from updated union all select id from created);

  if taken is not null or fenced is not null then
    raise exception using
      errcode = 'CF409',
      message = 'coffer batch conflict',
      detail = jsonb_build_object('taken', coalesce(taken, '[]'::jsonb), 'fenced', coalesce(fenced, '[]'::jsonb))::text;
  end if;

  insert into journals (id, kind, asset, wallet_id, reference, source_kind, source_id, created_at)
  select id, kind, asset, wallet_id, reference, source_kind, source_id, created_at
  from jsonb_to_recordset(batch->'journals')
    as j(id uuid, kind text, asset text, wallet_id uuid, reference text, source_kind text, source_id uuid, created_at timestamptz);

  insert into postings (journal_id, account, asset, amount)
  select journal_id, account, asset, amount
  from jsonb_to_recordset(batch->'postings')
    as p(journal_id uuid, account text, asset text, amount numeric);

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

  -- In the order given: a wallet's events get increasing outbox seqs, which the relay keeps.
  insert into outbox (id, aggregate_id, type, payload, created_at, saga_pending, payout_pending)
  select o.id, o.aggregate_id, o.type, o.payload, o.created_at, o.saga_pending, coalesce(o.payout_pending, false)
  from jsonb_array_elements(batch->'events') with ordinality as e(doc, n)
  cross join lateral jsonb_to_record(e.doc)
    as o(id uuid, aggregate_id uuid, type text, payload jsonb, created_at timestamptz, saga_pending boolean, payout_pending boolean)
  order by e.n;
end
$$;
