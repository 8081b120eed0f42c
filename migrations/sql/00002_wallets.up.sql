-- Wallets hold balances in minor units (bigint). Balances can never go negative, even if a
-- bug slipped past the service's own checks.
CREATE TABLE wallets (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id            uuid NOT NULL REFERENCES users (id),
  currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3,5}$'),
  kind               text NOT NULL CHECK (kind IN ('fiat', 'crypto')),
  status             text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED', 'LOCKED', 'CLOSED')),
  available_balance  bigint NOT NULL DEFAULT 0 CHECK (available_balance >= 0),
  pending_balance    bigint NOT NULL DEFAULT 0 CHECK (pending_balance >= 0),
  daily_limit        bigint CHECK (daily_limit >= 0),
  monthly_limit      bigint CHECK (monthly_limit >= 0),
  version            bigint NOT NULL DEFAULT 0,
  status_actor       jsonb,
  limits_actor       jsonb,
  event_seq          integer NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  closed_at          timestamptz,
  CONSTRAINT wallets_monthly_ge_daily CHECK (monthly_limit IS NULL OR daily_limit IS NULL OR monthly_limit >= daily_limit),
  CONSTRAINT wallets_closed_empty CHECK (status <> 'CLOSED' OR (available_balance = 0 AND pending_balance = 0)),
  CONSTRAINT wallets_closed_at CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL))
)
-- Every posting rewrites its wallet rows (balance, version, updated_at, event_seq: none of them
-- indexed). Free room on each page lets that new row version stay on the same page (a HOT
-- update: no index entries, no new page touched); a full page forces a non-HOT update that
-- inserts into all six wallet indexes.
WITH (fillfactor = 70);
-- One open wallet per (user, currency); a CLOSED one does not count.
CREATE UNIQUE INDEX wallets_user_currency_open_key ON wallets (user_id, currency) WHERE status <> 'CLOSED';
CREATE INDEX wallets_user_created_idx ON wallets (user_id, created_at DESC, id DESC);
CREATE INDEX wallets_created_idx ON wallets (created_at DESC, id DESC);
CREATE INDEX wallets_currency_created_idx ON wallets (currency, created_at DESC, id DESC);
CREATE INDEX wallets_status_created_idx ON wallets (status, created_at DESC, id DESC);
