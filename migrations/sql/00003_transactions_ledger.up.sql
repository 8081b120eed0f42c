-- Transactions and the double-entry ledger.

-- Time-ordered ids (the UUIDv7 layout: 48-bit Unix time in ms, version 7, then random bits)
-- for the rows the money path inserts (transactions here, outbox events in 00004). Random v4
-- keys land on random btree leaves: page splits everywhere and, after each checkpoint, a
-- full-page image per touched leaf. Time-ordered keys append at the right edge of the index.
-- Ids stay opaque uuids to clients; ordering within one millisecond is random.
CREATE FUNCTION pb_uuid7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(set_bit(set_bit(
    overlay(uuid_send(gen_random_uuid())
            placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
            FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;

CREATE TABLE transactions (
  id                       uuid PRIMARY KEY DEFAULT pb_uuid7(),
  type                     text NOT NULL CHECK (type IN ('DEPOSIT', 'WITHDRAW', 'TRANSFER', 'PAYOUT', 'FEE', 'REFUND', 'ADJUSTMENT')),
  status                   text NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  wallet_id                uuid NOT NULL REFERENCES wallets (id),
  destination_wallet_id    uuid REFERENCES wallets (id),
  -- ADJUSTMENT goes either way; the other types have a fixed direction.
  direction                text NOT NULL CHECK (direction IN ('credit', 'debit')),
  amount                   bigint NOT NULL CHECK (amount > 0),
  -- PAYOUT only: the captured part of a completed hold (partial capture).
  captured_amount          bigint CHECK (captured_amount > 0 AND captured_amount <= amount),
  currency                 text NOT NULL CHECK (currency ~ '^[A-Z]{3,5}$'),
  description              text NOT NULL CHECK (length(description) <= 1000),
  external_reference       text CHECK (length(external_reference) <= 255),
  metadata                 jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  failure_reason           text CHECK (length(failure_reason) <= 1000),
  retry_count              integer NOT NULL DEFAULT 0 CHECK (retry_count BETWEEN 0 AND 3),
  idempotency_key          text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  original_transaction_id  uuid REFERENCES transactions (id),
  actor                    jsonb NOT NULL,
  expires_at               timestamptz,
  event_seq                integer NOT NULL DEFAULT 0,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  processed_at             timestamptz,
  completed_at             timestamptz,
  CONSTRAINT transactions_transfer_dest CHECK ((type = 'TRANSFER') = (destination_wallet_id IS NOT NULL)),
  CONSTRAINT transactions_not_self CHECK (destination_wallet_id IS NULL OR destination_wallet_id <> wallet_id),
  CONSTRAINT transactions_hold_expiry CHECK (type = 'PAYOUT' OR expires_at IS NULL),
  CONSTRAINT transactions_capture_payout CHECK (type = 'PAYOUT' OR captured_amount IS NULL),
  CONSTRAINT transactions_refund_original CHECK (type = 'REFUND' OR original_transaction_id IS NULL),
  CONSTRAINT transactions_pending_payout CHECK (status NOT IN ('PENDING', 'FAILED') OR type = 'PAYOUT')
);
-- Indexes (every insert pays for each full index, so the set is the smallest that serves each
-- list of SPEC §3.2). Ascending keys: a backward scan serves ORDER BY created_at DESC, id DESC
-- as well, and new rows then append at the right edge, where btree splits pack pages full
-- (a DESC index inserts at its left edge, where every split leaves a half-empty page).
--   GET /transactions (admin, no filter)            transactions_created_idx
--   ?wallet_id= / GET /wallets/:id/transactions      transactions_wallet_created_idx (+ _dest_created_idx)
--   ?type= (with or without ?status=)                transactions_type_created_idx (status: filter)
--   ?status=COMPLETED (the bulk of the rows)         transactions_created_idx, status as a filter
--   ?status=PENDING|FAILED|CANCELLED                 transactions_open_status_idx (partial: rare rows,
--                                                    nothing to maintain on a completed posting)
--   daily/monthly limit sums (pb_check_outgoing)    transactions_wallet_created_idx
CREATE INDEX transactions_created_idx ON transactions (created_at, id);
CREATE INDEX transactions_wallet_created_idx ON transactions (wallet_id, created_at, id);
CREATE INDEX transactions_dest_created_idx ON transactions (destination_wallet_id, created_at, id)
  WHERE destination_wallet_id IS NOT NULL;
CREATE INDEX transactions_type_created_idx ON transactions (type, created_at, id);
CREATE INDEX transactions_open_status_idx ON transactions (status, created_at, id) WHERE status <> 'COMPLETED';
-- the hold-expiry sweep
CREATE INDEX transactions_pending_holds_idx ON transactions (expires_at) WHERE type = 'PAYOUT' AND status = 'PENDING';
CREATE INDEX transactions_original_idx ON transactions (original_transaction_id) WHERE original_transaction_id IS NOT NULL;

-- Ledger entries record changes of a wallet's TOTAL balance. An entry belongs to a wallet,
-- or to the per-currency system account through which money enters or leaves PayBridge.
-- System accounts keep no running balance (balance_after is NULL for them): a single
-- per-currency row would serialise every deposit and withdrawal; their balance is the sum
-- of their entries.
CREATE TABLE ledger_entries (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  transaction_id  uuid NOT NULL REFERENCES transactions (id),
  wallet_id       uuid REFERENCES wallets (id),
  system_account  text CHECK (system_account ~ '^[A-Z]{3,5}$'),
  currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3,5}$'),
  amount          bigint NOT NULL CHECK (amount <> 0),
  balance_after   bigint,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ledger_entries_one_account CHECK ((wallet_id IS NULL) <> (system_account IS NULL)),
  CONSTRAINT ledger_entries_system_currency CHECK (system_account IS NULL OR system_account = currency),
  CONSTRAINT ledger_entries_wallet_balance CHECK (wallet_id IS NULL OR (balance_after IS NOT NULL AND balance_after >= 0))
);
-- GET /wallets/:id/entries (ascending for the same reason as the transactions indexes).
-- No index on transaction_id: nothing reads entries by transaction (reconciliation aggregates
-- the whole table) and transactions are never deleted, so the foreign key needs none either;
-- it would be two more index entries on every posting.
CREATE INDEX ledger_entries_wallet_idx ON ledger_entries (wallet_id, created_at, id) WHERE wallet_id IS NOT NULL;

-- The ledger is append-only, even for the table owner.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();
