-- Whether monitoring has read a withdrawal's request (the monitoring cursor is past its outbox event)
-- and holds nothing pending for it. Payout workers (Stripe, chain) pay only what it cleared when
-- monitoring is on, so a `hold` rule parks a payout before any money is sent.
create function monitoring_cleared(withdrawal uuid) returns boolean language sql stable as $$
  select exists (
      select 1 from outbox o, monitoring_cursor c
      where c.id = 1 and o.type = 'withdrawal.changed' and o.payload->>'status' = 'requested'
        and o.payload->>'withdrawalId' = withdrawal::text
        and o.xid is not null and (o.xid, o.seq) <= (c.xid, c.seq))
    and not exists (select 1 from monitoring_holds h where h.withdrawal_id = withdrawal and h.status = 'pending')
$$;
