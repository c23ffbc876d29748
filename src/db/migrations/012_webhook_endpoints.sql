-- Webhooks out: apps' endpoints, the delivery of each committed event to each endpoint that
-- subscribed to it, and every attempt (src/workers/webhook-delivery.ts).

create table webhook_endpoints (
  id                   uuid primary key,
  -- Who registered it (lib/principal.ts scopeOf: "service:payroll", "admin:ops"): a service sees
  -- and manages its own endpoints only; admins and auditors see every one.
  owner                text not null,
  url                  text not null,
  -- Event types and prefixes (`wallet.*`, `*`), checked against the known types at registration.
  events               text[] not null,
  -- The signing secret (whsec_…), sealed with the Vault under this row's id; shown once, at creation.
  secret_sealed        jsonb not null,
  status               text not null check (status in ('enabled', 'disabled')),
  -- 'manual' (the disable route) or 'failing' (failed too often for too long: an alert was raised).
  disabled_reason      text check (disabled_reason in ('manual', 'failing')),
  disabled_at          timestamptz,
  -- The outbox seq when it was registered: it gets the events committed after.
  start_seq            bigint not null,
  -- Failed attempts in a row, and when the first of them failed (reset by any success).
  consecutive_failures int not null default 0,
  failing_since        timestamptz,
  created_at           timestamptz not null,
  updated_at           timestamptz not null
);
create index webhook_endpoints_owner on webhook_endpoints (owner, created_at desc, id desc);
create index webhook_endpoints_listed on webhook_endpoints (created_at desc, id desc);

-- Outbox rows not yet fanned out to the endpoints. Rows committed before this migration are not
-- (no endpoint existed); every row written from now on is, by the column's default, without any
-- writer naming it.
alter table outbox add column webhooks_pending boolean not null default false;
alter table outbox alter column webhooks_pending set default true;
create index outbox_webhooks_pending on outbox (seq) where webhooks_pending;

-- One event to one endpoint. Ordered deliveries (redelivery_of is null) go out one at a time per
-- (endpoint, aggregate), in outbox order: a delivery that keeps failing holds back the later
-- events of its wallet for that endpoint, and nothing else. A manual redelivery is a row of its
-- own (redelivery_of: the delivery it repeats), sent at once, beside the line.
create table webhook_deliveries (
  id              uuid primary key,
  endpoint_id     uuid not null references webhook_endpoints (id),
  event_seq       bigint not null,
  event_id        uuid not null,
  event_type      text not null,
  aggregate_id    uuid not null,
  redelivery_of   uuid references webhook_deliveries (id),
  status          text not null check (status in ('pending', 'delivered', 'failed')),
  -- Attempts started (counted when one starts, so a crash mid-attempt still counts).
  attempts        int not null default 0,
  next_attempt_at timestamptz not null default now(),
  -- Held by a node while it attempts the delivery; free again after, or once this time passes.
  leased_until    timestamptz,
  last_attempt_at timestamptz,
  last_status     int,
  last_error      text,
  created_at      timestamptz not null default now(),
  delivered_at    timestamptz
);
create unique index webhook_deliveries_once on webhook_deliveries (endpoint_id, event_id) where redelivery_of is null;
create index webhook_deliveries_line on webhook_deliveries (endpoint_id, aggregate_id, event_seq) where status = 'pending' and redelivery_of is null;
create index webhook_deliveries_manual on webhook_deliveries (next_attempt_at) where status = 'pending' and redelivery_of is not null;
create index webhook_deliveries_log on webhook_deliveries (endpoint_id, created_at desc, id desc);

-- The delivery log: each attempt's outcome. Never a body (ours or the receiver's), never a secret.
create table webhook_attempts (
  delivery_id uuid not null references webhook_deliveries (id),
  attempt     int not null,
  at          timestamptz not null,
  -- The receiver's HTTP status, when it answered.
  status_code int,
  latency_ms  int not null,
  -- What went wrong, as a class: timeout, connect, dns, address_refused, redirect, http_4xx,
  -- http_5xx, tls, too_large, network.
  error       text,
  primary key (delivery_id, attempt)
);
