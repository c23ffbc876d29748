-- Chain payouts, the full pipeline (src/integrations/chain/, evm/, solana/): ERC-20 and SPL tokens,
-- fee replacement, cancellation, gas booked in the ledger, paused networks, dead-letter queues,
-- operator actions, request-time limits and one signer per (network, address).

-- What is paid and how. `asset` is the Coffer asset (ETH, USDC, SOL); `token` the contract or mint
-- for tokens (null for the native coin).
alter table chain_payouts
  add column asset text not null default 'ETH',
  add column token text,
  -- Every transaction signed for this payout's nonce, newest last: {hash, raw, maxFeePerGas,
  -- maxPriorityFeePerGas | gasPrice, kind: "payout" | "cancel", at}. Any of them may be the one
  -- mined; the tracker watches all of them.
  add column attempts jsonb not null default '[]',
  -- The block (head) when the newest attempt was broadcast: replacement counts blocks from here.
  add column broadcast_block bigint,
  add column broadcast_at timestamptz,
  add column replacements int not null default 0,
  -- Solana: the blockhash's last valid block height for the stored signature.
  add column last_valid_block_height bigint,
  -- Gas paid, booked once to system:network_fees:<network> (journal id).
  add column fee_journal_id uuid,
  -- An operator's request the worker carries out (it alone touches the chain): retry | cancel | replace.
  add column operator_action text check (operator_action in ('retry', 'cancel', 'replace')),
  add column operator_action_by text,
  -- For a parked payout: the status it was parked from (retry and redrive put it back there).
  add column parked_from text,
  -- Worker failures of the current stage (retries with backoff, then the dead-letter queue).
  add column stage_failures int not null default 0,
  add column next_attempt_at timestamptz not null default now();
-- status: claimed → signed → broadcast → confirmed → completed, or failed (nothing signed can be mined
-- any more), parked (an operator's; parked_from says where it was), dropped (cancelled by the owner
-- before anything was signed), cancelling (an operator's 0-value self-send at the payout's nonce is
-- out) → cancelled (that cancellation is final: the withdrawal failed, its hold released).
create index chain_payouts_status on chain_payouts (network, status, created_at);

-- Per network: paused by an operator or by the runway check, and what the worker saw last.
create table chain_networks (
  network        text primary key,
  paused         boolean not null default false,
  -- operator | runway
  paused_by      text,
  paused_reason  text,
  paused_at      timestamptz,
  hot_balance    numeric(78,0),
  last_block     bigint,
  last_block_at  timestamptz,
  -- The chain's confirmed nonce for the hot wallet when last checked, and the drift found then.
  chain_nonce    bigint,
  drift          text,
  updated_at     timestamptz not null default now()
);

-- Dead-letter queue, one per stage (`stage`): a payout whose stage failed `attempts` times. The
-- payout itself is parked; redrive puts it back to the stage, delete leaves it parked for good.
create table chain_dlq (
  id            uuid primary key,
  withdrawal_id uuid not null references withdrawals (id),
  network       text not null,
  stage         text not null,
  reason        text not null,
  attempts      int not null,
  created_at    timestamptz not null default now(),
  -- open | redriven | deleted
  status        text not null default 'open',
  settled_by    text,
  settled_at    timestamptz
);
create index chain_dlq_open on chain_dlq (created_at) where status = 'open';

-- Every operator action on networks, payouts and dead letters.
create table chain_operator_audit (
  id         bigserial primary key,
  actor      text not null,
  action     text not null,
  subject    text not null,
  detail     jsonb not null default '{}',
  at         timestamptz not null default now()
);

-- Request-time limits: each limited withdrawal reserves its amount on each limited scope
-- (`wallet:<id>:<network>:<asset>` and `network:<network>:<asset>`) for its UTC day, once per
-- request (`reservation`: the wallet and the caller's idempotency key, so a retry reserves nothing
-- twice). A refused request, or a withdrawal that fails without paying, gives its amount back.
create table chain_limit_usage (
  scope   text not null,
  day     date not null,
  used    numeric(78,0) not null default 0,
  primary key (scope, day)
);
create table chain_limit_reservations (
  reservation   text not null,
  withdrawal_id uuid,
  scope         text not null,
  day           date not null,
  amount        numeric(78,0) not null,
  released      boolean not null default false,
  primary key (reservation, scope)
);
create index chain_limit_reservations_withdrawal on chain_limit_reservations (withdrawal_id) where withdrawal_id is not null;

-- One signer per (network, address) across the cluster: a lease with a fencing token. Only the
-- holder of the current token may allocate nonces or broadcast; a stale holder's writes fail.
create table chain_signer_leases (
  network    text not null,
  address    text not null,
  holder     text not null,
  token      bigint not null,
  expires_at timestamptz not null,
  primary key (network, address)
);
