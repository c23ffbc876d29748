-- A chain network's flat withdrawal fee (NETWORKS_FILE `withdrawalFeeMinor` per asset), kept from
-- what is sent: `amount` is what the payout sends, `withdrawal_fee` what the wallet's withdrawal
-- gives to system:withdrawal_fees on completion (the two add up to the withdrawal's amount).
alter table chain_payouts add column withdrawal_fee numeric(78,0) not null default 0;
