-- Finding the outbox event of a withdrawal's request by the withdrawal's id: the chain payout
-- worker asks whether monitoring has read it yet (src/integrations/evm/payouts.ts). One entry per
-- withdrawal request, nothing for the other events.
create index outbox_withdrawal_requests on outbox ((payload->>'withdrawalId'))
  where type = 'withdrawal.changed' and payload->>'status' = 'requested';
