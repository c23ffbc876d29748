-- Core schema: wallets with their actor snapshot, the double-entry ledger, idempotency, outbox.
-- Money is numeric(78,0): integers in the asset's smallest unit, wide enough for uint256 (wei).

create table wallets (
  id              uuid primary key,
  owner_id        text not null,
  asset           text not null,
  status          text not null,
  -- Projections of the snapshot, written in the same statement, so SQL (the verifier, listings)
  -- can read them without parsing JSON. The snapshot stays the actor's truth.
  posted          numeric(78,0) not null,
  held            numeric(78,0) not null,
  -- Fencing: every write is "where version = <the version this actor loaded>".
  version         bigint not null,
  machine_version int not null,
  snapshot        jsonb not null,
  created_at      timestamptz not null,
  updated_at      timestamptz not null
);
create index wallets_owner on wallets (owner_id);

create table journals (
  id         uuid primary key,
  kind       text not null,
  asset      text not null,
  wallet_id  uuid not null,
  reference  text,
  created_at timestamptz not null
);

-- No foreign key to journals: both are written by the same statement, and a per-row key check
-- would be the most expensive part of a payment. The verifier looks for orphans instead.
-- Keyed by account first: a wallet's history is one index range, and each posting costs one index
-- entry rather than two.
create table postings (
  id         bigserial,
  journal_id uuid not null,
  account    text not null,
  asset      text not null,
  amount     numeric(78,0) not null check (amount <> 0),
  primary key (account, id)
);

create table withdrawals (
  id          uuid primary key,
  wallet_id   uuid not null references wallets (id),
  asset       text not null,
  amount      numeric(78,0) not null check (amount > 0),
  status      text not null,
  destination jsonb not null,
  reason      text,
  created_at  timestamptz not null,
  updated_at  timestamptz not null
);
create index withdrawals_wallet on withdrawals (wallet_id, created_at desc);

create table transfers (
  id             uuid primary key,
  from_wallet_id uuid not null references wallets (id),
  to_wallet_id   uuid not null references wallets (id),
  asset          text not null,
  amount         numeric(78,0) not null check (amount > 0),
  status         text not null,
  reason         text,
  created_at     timestamptz not null,
  updated_at     timestamptz not null
);

-- First result of every mutation, by the caller's key. Replays read it; the unique key stops two
-- nodes or two actors from both acting on one key.
create table idempotency_keys (
  scope       text not null,
  key         text not null,
  fingerprint text not null,
  status      int not null,
  -- json, not jsonb: a replay answers the first body byte for byte, keys in the same order.
  body        json not null,
  created_at  timestamptz not null default now(),
  primary key (scope, key)
);
-- Rows arrive in time order, so a BRIN index finds the expired ones for a fraction of a btree's cost.
create index idempotency_keys_created on idempotency_keys using brin (created_at);

-- Domain events written in the same transaction as the change they describe. The saga worker
-- drives transfers from them; later a relay publishes them.
create table outbox (
  seq          bigserial primary key,
  -- Unique by construction (UUIDv7 made by the writer); consumers deduplicate on it.
  id           uuid not null,
  aggregate_id uuid not null,
  type         text not null,
  payload      jsonb not null,
  created_at   timestamptz not null,
  -- Set when the event still needs the transfer saga; cleared once its next step has committed.
  saga_pending boolean not null default false
);
create index outbox_saga_pending on outbox (seq) where saga_pending;
