-- Back to one CHECK constraint per rule (the definitions of 00002-00004, as PostgreSQL
-- stores them).
ALTER TABLE wallets DROP CONSTRAINT wallets_rules,
  ADD CONSTRAINT wallets_currency_check CHECK (currency ~ '^[A-Z]{3,5}$'),
  ADD CONSTRAINT wallets_kind_check CHECK (kind IN ('fiat', 'crypto')),
  ADD CONSTRAINT wallets_status_check CHECK (status IN ('ACTIVE', 'SUSPENDED', 'LOCKED', 'CLOSED')),
  ADD CONSTRAINT wallets_available_balance_check CHECK (available_balance >= 0),
  ADD CONSTRAINT wallets_pending_balance_check CHECK (pending_balance >= 0),
  ADD CONSTRAINT wallets_daily_limit_check CHECK (daily_limit >= 0),
  ADD CONSTRAINT wallets_monthly_limit_check CHECK (monthly_limit >= 0),
  ADD CONSTRAINT wallets_monthly_ge_daily CHECK (monthly_limit IS NULL OR daily_limit IS NULL OR monthly_limit >= daily_limit),
  ADD CONSTRAINT wallets_closed_empty CHECK (status <> 'CLOSED' OR (available_balance = 0 AND pending_balance = 0)),
  ADD CONSTRAINT wallets_closed_at CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL));
ALTER TABLE transactions DROP CONSTRAINT transactions_rules,
  ADD CONSTRAINT transactions_type_check
    CHECK (type IN ('DEPOSIT', 'WITHDRAW', 'TRANSFER', 'PAYOUT', 'FEE', 'REFUND', 'ADJUSTMENT')),
  ADD CONSTRAINT transactions_status_check CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  ADD CONSTRAINT transactions_direction_check CHECK (direction IN ('credit', 'debit')),
  ADD CONSTRAINT transactions_amount_check CHECK (amount > 0),
  ADD CONSTRAINT transactions_check CHECK (captured_amount > 0 AND captured_amount <= amount),
  ADD CONSTRAINT transactions_currency_check CHECK (currency ~ '^[A-Z]{3,5}$'),
  ADD CONSTRAINT transactions_description_check CHECK (length(description) <= 1000),
  ADD CONSTRAINT transactions_external_reference_check CHECK (length(external_reference) <= 255),
  ADD CONSTRAINT transactions_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
  ADD CONSTRAINT transactions_failure_reason_check CHECK (length(failure_reason) <= 1000),
  ADD CONSTRAINT transactions_retry_count_check CHECK (retry_count BETWEEN 0 AND 3),
  ADD CONSTRAINT transactions_idempotency_key_check CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  ADD CONSTRAINT transactions_transfer_dest CHECK ((type = 'TRANSFER') = (destination_wallet_id IS NOT NULL)),
  ADD CONSTRAINT transactions_not_self CHECK (destination_wallet_id IS NULL OR destination_wallet_id <> wallet_id),
  ADD CONSTRAINT transactions_hold_expiry CHECK (type = 'PAYOUT' OR expires_at IS NULL),
  ADD CONSTRAINT transactions_capture_payout CHECK (type = 'PAYOUT' OR captured_amount IS NULL),
  ADD CONSTRAINT transactions_refund_original CHECK (type = 'REFUND' OR original_transaction_id IS NULL),
  ADD CONSTRAINT transactions_pending_payout CHECK (status NOT IN ('PENDING', 'FAILED') OR type = 'PAYOUT');
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_rules,
  ADD CONSTRAINT ledger_entries_system_account_check CHECK (system_account ~ '^[A-Z]{3,5}$'),
  ADD CONSTRAINT ledger_entries_currency_check CHECK (currency ~ '^[A-Z]{3,5}$'),
  ADD CONSTRAINT ledger_entries_amount_check CHECK (amount <> 0),
  ADD CONSTRAINT ledger_entries_one_account CHECK ((wallet_id IS NULL) <> (system_account IS NULL)),
  ADD CONSTRAINT ledger_entries_system_currency CHECK (system_account IS NULL OR system_account = currency),
  ADD CONSTRAINT ledger_entries_wallet_balance
    CHECK (wallet_id IS NULL OR (balance_after IS NOT NULL AND balance_after >= 0));
ALTER TABLE outbox DROP CONSTRAINT outbox_rules,
  ADD CONSTRAINT outbox_type_check CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+$'),
  ADD CONSTRAINT outbox_sequence_check CHECK (sequence >= 1),
  ADD CONSTRAINT outbox_status_check CHECK (status IN ('PENDING', 'PUBLISHED', 'FAILED')),
  ADD CONSTRAINT outbox_aggregate_type_check CHECK (aggregate_type IN ('user', 'wallet', 'transaction'));
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_rules,
  ADD CONSTRAINT idempotency_keys_status_code_check CHECK (status_code BETWEEN 200 AND 599),
  ADD CONSTRAINT idempotency_keys_scope_check CHECK (length(scope) BETWEEN 1 AND 255),
  ADD CONSTRAINT idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 255);
DROP FUNCTION pb_wallets_rules(wallets), pb_transactions_rules(transactions), pb_ledger_entries_rules(ledger_entries),
  pb_outbox_rules(outbox), pb_idempotency_keys_rules(idempotency_keys), pb_rule_broken(text, text);
