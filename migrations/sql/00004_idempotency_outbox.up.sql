-- Idempotency records: the stored outcome of a money-moving request, written in the same
-- database transaction as its effect. Scope is the caller (user id, admin sub, or
-- 'anonymous').
CREATE TABLE idempotency_keys (
  scope           text NOT NULL CHECK (length(scope) BETWEEN 1 AND 255),
  key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint     text NOT NULL,
  status_code     integer NOT NULL CHECK (status_code BETWEEN 200 AND 599),
  response_body   text NOT NULL,
  transaction_id  uuid REFERENCES transactions (id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Transactional outbox. `position` orders the feed; `txid` lets /events serve only rows
-- older than every in-flight transaction, so a late commit is never skipped.
CREATE TABLE outbox (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  position         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  type             text NOT NULL CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+$'),
  version          integer NOT NULL DEFAULT 1,
  aggregate_type   text NOT NULL CHECK (aggregate_type IN ('user', 'wallet', 'transaction')),
  aggregate_id     uuid NOT NULL,
  sequence         integer NOT NULL CHECK (sequence >= 1),
  trace_id         text,
  actor            jsonb,
  data             jsonb NOT NULL,
  occurred_at      timestamptz NOT NULL DEFAULT now(),
  txid             xid8 NOT NULL DEFAULT pg_current_xact_id(),
  status           text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PUBLISHED', 'FAILED')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  last_error       text,
  published_at     timestamptz,
  CONSTRAINT outbox_aggregate_sequence_key UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX outbox_pending_idx ON outbox (position) WHERE status = 'PENDING';
CREATE INDEX outbox_failed_idx ON outbox (position) WHERE status = 'FAILED';
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE status = 'PUBLISHED';
CREATE INDEX outbox_occurred_idx ON outbox (occurred_at);
