-- Operator routes over the chain payout pipeline (src/integrations/chain/operator.ts,
-- src/api/operations/chain.ts).

-- When the worker last read the hot wallet's balance (`hot_balance`): the networks view shows the
-- balance with its time. The worker sets both together; `updated_at` also moves for other reasons.
alter table chain_networks add column hot_balance_at timestamptz;

-- Newest first, a page at a time: payouts and dead letters by (created_at, id), whatever the filters.
create index chain_payouts_created on chain_payouts (created_at, withdrawal_id);
create index chain_dlq_created on chain_dlq (created_at, id);
-- A payout's open dead letters, settled with it when an operator retries it.
create index chain_dlq_withdrawal_open on chain_dlq (withdrawal_id) where status = 'open';
-- What operators did to one payout, network or dead letter.
create index chain_operator_audit_subject on chain_operator_audit (subject, at);
