-- Card deposits through Stripe (machines/deposit.machine.ts). As for wallets and chamas, the deposit
-- actor's snapshot is the truth and the rows here are projections written in the same transaction
-- (actors/deposit-store.ts), so SQL can read, list and reconcile deposits without parsing snapshots.
-- Money is numeric(78,0): minor units of the deposit's asset, which Stripe counts in the same units.

create table deposits (
  id                uuid primary key,
  wallet_id         uuid not null,
  owner_id          text not null,
  asset             text not null,
  -- What was asked for; `received` is what Stripe says arrived (amount_received).
  amount            numeric(78,0) not null check (amount > 0),
  status            text not null,
  -- One deposit per PaymentIntent: a webhook finds its deposit by it, and a second is refused.
  payment_intent_id text not null unique,
  received          numeric(78,0) not null default 0,
  refunded          numeric(78,0) not null default 0,
  disputed          numeric(78,0) not null default 0,
  version           bigint not null,
  machine_version   int not null,
  snapshot          jsonb not null,
  created_at        timestamptz not null,
  updated_at        timestamptz not null
);
create index deposits_wallet on deposits (wallet_id, created_at desc);

create table deposit_refunds (
  id               uuid primary key,
  deposit_id       uuid not null references deposits (id),
  amount           numeric(78,0) not null check (amount > 0),
  -- requested | pending | succeeded | failed | canceled
  status           text not null,
  -- Made at Stripe directly (the dashboard), not asked through Coffer.
  external         boolean not null,
  stripe_refund_id text,
  reason           text,
  created_at       timestamptz not null,
  updated_at       timestamptz not null
);
create index deposit_refunds_deposit on deposit_refunds (deposit_id, created_at);
create unique index deposit_refunds_stripe on deposit_refunds (stripe_refund_id) where stripe_refund_id is not null;

create table deposit_disputes (
  -- Stripe's dispute id.
  id         text primary key,
  deposit_id uuid not null references deposits (id),
  amount     numeric(78,0) not null check (amount > 0),
  -- open | won | lost
  status     text not null,
  reason     text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index deposit_disputes_deposit on deposit_disputes (deposit_id);

-- Every Stripe event Coffer took, once: the id is Stripe's, so a replay (Stripe retrying, or an
-- attacker resending a captured one) finds its row and does nothing. The body is kept byte for byte
-- as it was signed. Written before the webhook answers 200; processed by the Stripe event worker
-- (src/integrations/stripe/events.ts), which sets processed_at and what came of it.
create table stripe_events (
  id           text primary key,
  type         text not null,
  body         text not null,
  received_at  timestamptz not null default now(),
  processed_at timestamptz,
  outcome      text,
  attempts     int not null default 0
);
create index stripe_events_unprocessed on stripe_events (received_at) where processed_at is null;

-- Deposit effects that need the deposit saga (src/workers/deposit-saga.ts: credit the wallet, debit
-- it for a refund and ask Stripe, …) stay marked until their step has committed, as transfer steps
-- do with saga_pending; a restart resumes them.
alter table outbox add column deposit_pending boolean not null default false;
create index outbox_deposit_pending on outbox (seq) where deposit_pending;
