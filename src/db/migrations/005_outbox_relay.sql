-- The relay publishes every outbox event to JetStream once (consumers see each at least once;
-- Nats-Msg-Id = event id lets the stream drop repeats) and marks it here.
alter table outbox add column published_at timestamptz;
create index outbox_unpublished on outbox (seq) where published_at is null;
