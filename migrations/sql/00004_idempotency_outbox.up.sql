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
-- Only the TTL purge reads by age, and rows arrive in created_at order: a BRIN summary costs the
-- insert next to nothing (a btree would add one more index entry to every posting).
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys USING brin (created_at);

-- Transactional outbox. `position` orders the feed; `txid` lets /events serve only rows
-- older than every in-flight transaction, so a late commit is never skipped.
CREATE TABLE outbox (
  -- time-ordered (pb_uuid7, 00003): appends at the right edge of the primary key
  id               uuid PRIMARY KEY DEFAULT pb_uuid7(),
  -- unique by construction (GENERATED ALWAYS); the relay orders by it through outbox_pending_idx
  -- and the feed through outbox_feed_idx (00007), so no index of its own
  position         bigint GENERATED ALWAYS AS IDENTITY,
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
-- Each posting inserts up to four events, each paying for every full index here: pkey,
-- aggregate sequence, pending (every new row is PENDING) and the feed index (00007). FAILED
-- and PUBLISHED rows are not in the insert path. Age (the no-target purge) is read through a
-- BRIN summary: rows arrive in occurred_at order, and BRIN upkeep on insert is next to nothing.
CREATE INDEX outbox_occurred_idx ON outbox USING brin (occurred_at);
