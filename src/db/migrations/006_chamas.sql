-- Chamas (group wallets). Like wallets, the actor's snapshot is the truth and every other column
-- or table here is a projection written in the same transaction (actors/chama-store.ts), so SQL
-- can list, verify and authorize without parsing snapshots. Chama journals and postings go to the
-- shared ledger tables; for them journals.wallet_id holds the chama's id.

create table chamas (
  id              uuid primary key,
  name            text not null,
  asset           text not null,
  status          text not null,
  created_by      text not null,
  posted          numeric(78,0) not null,
  held            numeric(78,0) not null,
  -- Fencing, as for wallets: every write is "where version = <the version this actor loaded>".
  version         bigint not null,
  machine_version int not null,
  snapshot        jsonb not null,
  created_at      timestamptz not null,
  updated_at      timestamptz not null
);

-- Everyone who was ever part of a chama (never deleted: a former member can still read what they
-- were part of, and authorization before the actor only ever widens).
create table chama_members (
  chama_id    uuid not null references chamas (id),
  member_id   text not null,
  role        text,
  -- member | invited | former | revoked
  status      text not null,
  contributed numeric(78,0) not null default 0,
  withdrawn   numeric(78,0) not null default 0,
  updated_at  timestamptz not null,
  primary key (chama_id, member_id)
);
create index chama_members_member on chama_members (member_id);

create table chama_withdrawals (
  id          uuid primary key,
  chama_id    uuid not null references chamas (id),
  member_id   text not null,
  asset       text not null,
  amount      numeric(78,0) not null check (amount > 0),
  status      text not null,
  -- Sealed (AES-256-GCM) with its masked form; only the masked form is ever shown.
  destination jsonb not null,
  approvals   jsonb not null,
  rejections  jsonb not null,
  reason      text,
  expires_at  timestamptz not null,
  created_at  timestamptz not null,
  updated_at  timestamptz not null
);
create index chama_withdrawals_chama on chama_withdrawals (chama_id, created_at desc, id desc);
-- The expiry worker's question: which requests still waiting have outlived their lifetime.
create index chama_withdrawals_expiring on chama_withdrawals (expires_at)
  where status in ('pending_approval', 'manual_review', 'approved');

create table chama_reviews (
  seq           bigserial primary key,
  withdrawal_id uuid not null,
  chama_id      uuid not null,
  reviewer_id   text not null,
  decision      text not null,
  note          text,
  -- The withdrawal's status right after this review.
  status        text not null,
  at            timestamptz not null
);
create index chama_reviews_withdrawal on chama_reviews (withdrawal_id, seq);

-- Who did what, when, and what it changed: one row per accepted chama command.
create table chama_audit (
  seq      bigserial primary key,
  chama_id uuid not null,
  actor    text not null,
  action   text not null,
  target   text,
  before   jsonb,
  after    jsonb,
  note     text,
  -- The platform credential that reported a deposit or a payout's end (the actor is the member or
  -- "system" then).
  via      text,
  at       timestamptz not null
);
create index chama_audit_chama on chama_audit (chama_id, seq desc);
