-- Fraud and transaction monitoring (src/monitoring/) and the admin API's reads (src/admin/).
--
-- The monitoring worker reads the committed domain events (the outbox) with its own cursor, never in
-- the hot path of a payment. A cursor on `seq` alone could step over an event whose transaction
-- took its seq first and committed last; so every outbox row records the transaction that wrote it
-- (`xid`), and the worker reads in (xid, seq) order only what transactions older than every one
-- still running wrote (`xid < pg_snapshot_xmin(pg_current_snapshot())`): that set never grows
-- behind the cursor. Rows written before this migration have no xid; the cursor starts after them.
alter table outbox add column xid xid8;
alter table outbox alter column xid set default pg_current_xact_id();
create index outbox_xid on outbox (xid, seq) where xid is not null;

-- The worker's place in the outbox: one row, moved in the transaction that records what the events
-- it read came to (alerts, window counts, holds to make), so each event is evaluated exactly once.
create table monitoring_cursor (
  id         int primary key check (id = 1),
  xid        xid8 not null,
  seq        bigint not null,
  updated_at timestamptz not null default now()
);
insert into monitoring_cursor (id, xid, seq) values (1, pg_current_xact_id(), coalesce((select max(seq) from outbox), 0));

-- The rules in force when an admin changed them (GET/PUT /admin/monitoring/rules); without a row,
-- MONITORING_RULES_FILE's or the built-in defaults. Every change is audited with before and after.
create table monitoring_rules (
  id         int primary key check (id = 1),
  rules      jsonb not null,
  version    int not null,
  updated_by text not null,
  updated_at timestamptz not null
);
create table monitoring_rules_audit (
  seq        bigserial primary key,
  version    int not null,
  actor      text not null,
  before     jsonb not null,
  after      jsonb not null,
  note       text,
  at         timestamptz not null
);

-- Every money movement the worker evaluated, once per subject it counts for (the wallet, its owner,
-- a chama): what the window rules count. Pruned past the longest window.
create table monitoring_movements (
  seq          bigint not null,
  subject_kind text not null,
  subject_id   text not null,
  kind         text not null,
  asset        text not null,
  amount       numeric(78,0) not null,
  at           timestamptz not null,
  primary key (subject_kind, subject_id, kind, at, seq)
);
create index monitoring_movements_at on monitoring_movements using brin (at);

-- Payout destinations seen per owner, by a keyed fingerprint (HMAC of the normalized destination,
-- never the destination): the first payout to one is a "new destination".
create table monitoring_destinations (
  subject_kind  text not null,
  subject_id    text not null,
  fingerprint   text not null,
  first_seen_at timestamptz not null,
  primary key (subject_kind, subject_id, fingerprint)
);

-- One alert per (rule, subject, window): an event that fires the rule again inside the alert's
-- window bumps its count (and raises its severity) instead of making another.
create table monitoring_alerts (
  id            uuid primary key,
  rule          text not null,
  severity      text not null,
  subject_kind  text not null,
  subject_id    text not null,
  window_start  timestamptz not null,
  window_end    timestamptz not null,
  -- open | investigating | resolved | dismissed
  status        text not null,
  count         int not null,
  -- What fired it, redacted: amounts, counts, windows, kinds (never a destination).
  facts         jsonb not null,
  -- Withdrawals the rule held (ids), when its outcome is `hold`.
  held          jsonb not null default '[]',
  first_at      timestamptz not null,
  last_at       timestamptz not null,
  reviewed_by   text,
  reviewed_at   timestamptz,
  created_at    timestamptz not null,
  updated_at    timestamptz not null,
  unique (rule, subject_kind, subject_id, window_start)
);
create index monitoring_alerts_created on monitoring_alerts (created_at desc, id desc);
create index monitoring_alerts_status on monitoring_alerts (status, created_at desc, id desc);
create index monitoring_alerts_severity on monitoring_alerts (severity, created_at desc, id desc);
create index monitoring_alerts_open on monitoring_alerts (rule, subject_kind, subject_id, window_end desc);

create table monitoring_alert_reviews (
  seq        bigserial primary key,
  alert_id   uuid not null references monitoring_alerts (id),
  reviewer   text not null,
  from_status text not null,
  to_status  text not null,
  note       text,
  at         timestamptz not null
);
create index monitoring_alert_reviews_alert on monitoring_alert_reviews (alert_id, seq);

-- Withdrawals a `hold` rule parks: recorded with the alert (pending), then held through the
-- withdrawal's actor after the commit (a restart resumes pending ones), and decided by an admin.
create table monitoring_holds (
  withdrawal_id uuid primary key,
  -- wallet | chama
  kind          text not null,
  -- The wallet or chama the withdrawal belongs to.
  owner_id      uuid not null,
  alert_ids     jsonb not null,
  -- pending | held | missed (it was paying out or over already) | released | rejected
  status        text not null,
  decided_by    text,
  note          text,
  created_at    timestamptz not null,
  updated_at    timestamptz not null
);
create index monitoring_holds_pending on monitoring_holds (created_at) where status = 'pending';

-- The state history of every money object (withdrawal, transfer, deposit, chama withdrawal, or the
-- journal of a credit, payment or chama deposit), as its events were committed: what
-- GET /admin/transactions/:id shows. Written by the monitoring worker as it reads the outbox.
create table transaction_history (
  object_id  uuid not null,
  seq        bigint not null,
  type       text not null,
  status     text,
  journal_id uuid,
  at         timestamptz not null,
  primary key (object_id, seq)
);

-- The admin API's searches and stats (src/admin/): each newest first by an index, within a capped
-- time range, so their cost is bounded whatever the filters.
create index journals_created on journals (created_at desc, id desc);
create index journals_source on journals (source_id) where source_id is not null;
create index postings_journal on postings (journal_id);
create index withdrawals_created on withdrawals (created_at desc, id desc);
create index transfers_created on transfers (created_at desc, id desc);
create index deposits_created on deposits (created_at desc, id desc);
create index chama_withdrawals_created on chama_withdrawals (created_at desc, id desc);
