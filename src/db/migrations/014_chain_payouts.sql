-- Chain payouts, first slice: native ETH on EVM networks configured in NETWORKS_FILE
-- (src/integrations/evm/).

-- The hot wallet that pays a network: its private key sealed with the Vault (bound to the row's
-- id), never stored or printed opened.
create table hot_wallets (
  id         uuid primary key,
  network    text not null unique,
  address    text not null,
  sealed_key jsonb not null,
  created_at timestamptz not null default now()
);

-- The next nonce per (network, address), taken under `select … for update`; initialised from the
-- chain's pending nonce the first time.
create table chain_nonces (
  network    text not null,
  address    text not null,
  next_nonce bigint not null,
  primary key (network, address)
);

-- One row per withdrawal paid on chain. The signed raw transaction and its hash are stored before
-- it is broadcast, so after a crash the same bytes are sent again (never a new nonce).
-- status: claimed → signed → broadcast → confirmed | failed (never broadcast) | parked (an operator's).
create table chain_payouts (
  withdrawal_id uuid primary key references withdrawals (id),
  wallet_id     uuid not null,
  network       text not null,
  from_address  text not null,
  to_address    text,
  amount        numeric(78,0) not null,
  status        text not null,
  nonce         bigint,
  tx_hash       text unique,
  raw_tx        text,
  block_number  bigint,
  block_hash    text,
  gas_used      numeric(78,0),
  fee_wei       numeric(78,0),
  last_error    text,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now()
);
create index chain_payouts_open on chain_payouts (network) where status in ('claimed', 'signed', 'broadcast');
