-- API keys for services. The secret is shown once, at creation; only its SHA-256 is kept (the
-- secret is 192 random bits, so a fast hash cannot be brute-forced), with a short public prefix
-- to find the row. Nothing here can be turned back into a usable key.
create table api_keys (
  id                    uuid primary key,
  prefix                text not null unique,
  secret_sha256         text not null,
  name                  text not null,
  -- The service identity the key acts as (its principal's `sub`) and what it may do.
  subject               text not null,
  permissions           text[] not null,
  rate_limit_per_minute int check (rate_limit_per_minute > 0),
  -- CIDR blocks the key may be used from; null: anywhere.
  ip_allowlist          text[],
  expires_at            timestamptz,
  revoked_at            timestamptz,
  last_used_at          timestamptz,
  created_at            timestamptz not null,
  created_by            text not null
);
