-- The column and row rules of the five tables the money path writes, checked by one plpgsql
-- function per table instead of one CHECK constraint per rule.
--
-- Why: PostgreSQL stores a CHECK constraint as node text and, in every statement that writes
-- the table, reads each one back (stringToNode), plans it and compiles it again (ExecRelCheck
-- builds them per query, not per connection). A transfer writes five tables in five statements
-- and so re-read 28.6 KB of constraint text each time. Counted with callgrind (one backend,
-- 1,000 transfers through pb_post_http): 3.82 M instructions per transfer with the 41 CHECKs,
-- 2.78 M with none at all, 3.13 M with these five functions. A plpgsql function's expressions
-- are planned once per connection; each table's single CHECK is a call with a whole-row
-- argument, a few hundred bytes of node text. (Domains were the other way: 3.29 M, and
-- changing the columns' types rewrites the tables.)
--
-- Same rules, same names: every rule keeps the name of the CHECK it replaces, and a broken
-- rule raises check_violation (23514) naming it (CONSTRAINT, TABLE) as that CHECK did, so the
-- API's error mapping (src/db/errors.ts) and the logs see what they saw before. A rule that
-- yields NULL passes, as in a CHECK. Adding the constraints re-checks the existing rows (a scan,
-- not a rewrite).

-- Raises the violation of one named rule (VOLATILE: the planner never runs it ahead of time).
CREATE FUNCTION pb_rule_broken(p_table text, p_rule text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION 'new row for relation "%" violates check constraint "%"', p_table, p_rule
    USING ERRCODE = 'check_violation', CONSTRAINT = p_rule, TABLE = p_table;
END
$$;

-- Each function names the first rule the row breaks (a rule that yields NULL holds) and raises
-- its violation; a row that breaks none passes. One CASE of constant names rather than a raise
-- call per rule: every call site costs a function lookup each transaction (3.19 M instructions
-- per transfer in that form). The five functions repeat the same short frame (the CASE, the
-- IF): a shared helper taking the broken rule's name would be one more plpgsql call on every
-- row written, and a rules call costs ~20 K instructions (four outbox rows: 87 K per transfer).
CREATE FUNCTION pb_wallets_rules(w wallets) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_broken text := CASE
    WHEN (w.currency ~ '^[A-Z]{3,5}$') IS FALSE THEN 'wallets_currency_check'
    WHEN (w.kind IN ('fiat', 'crypto')) IS FALSE THEN 'wallets_kind_check'
    WHEN (w.status IN ('ACTIVE', 'SUSPENDED', 'LOCKED', 'CLOSED')) IS FALSE THEN 'wallets_status_check'
    WHEN (w.available_balance >= 0) IS FALSE THEN 'wallets_available_balance_check'
    WHEN (w.pending_balance >= 0) IS FALSE THEN 'wallets_pending_balance_check'
    WHEN (w.daily_limit >= 0) IS FALSE THEN 'wallets_daily_limit_check'
    WHEN (w.monthly_limit >= 0) IS FALSE THEN 'wallets_monthly_limit_check'
    WHEN (w.monthly_limit IS NULL OR w.daily_limit IS NULL OR w.monthly_limit >= w.daily_limit) IS FALSE THEN 'wallets_monthly_ge_daily'
    WHEN (w.status <> 'CLOSED' OR (w.available_balance = 0 AND w.pending_balance = 0)) IS FALSE THEN 'wallets_closed_empty'
    WHEN ((w.status = 'CLOSED') = (w.closed_at IS NOT NULL)) IS FALSE THEN 'wallets_closed_at'
  END;
BEGIN
  IF v_broken IS NOT NULL THEN PERFORM pb_rule_broken('wallets', v_broken); END IF;
  RETURN true;
END
$$;

CREATE FUNCTION pb_transactions_rules(t transactions) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_broken text := CASE
    WHEN (t.type IN ('DEPOSIT', 'WITHDRAW', 'TRANSFER', 'PAYOUT', 'FEE', 'REFUND', 'ADJUSTMENT')) IS FALSE THEN 'transactions_type_check'
    WHEN (t.status IN ('PENDING', 'COMPLETED', 'FAILED', 'CANCELLED')) IS FALSE THEN 'transactions_status_check'
    WHEN (t.direction IN ('credit', 'debit')) IS FALSE THEN 'transactions_direction_check'
    WHEN (t.amount > 0) IS FALSE THEN 'transactions_amount_check'
    WHEN (t.captured_amount > 0 AND t.captured_amount <= t.amount) IS FALSE THEN 'transactions_check'
    WHEN (t.currency ~ '^[A-Z]{3,5}$') IS FALSE THEN 'transactions_currency_check'
    WHEN (length(t.description) <= 1000) IS FALSE THEN 'transactions_description_check'
    WHEN (length(t.external_reference) <= 255) IS FALSE THEN 'transactions_external_reference_check'
    WHEN (jsonb_typeof(t.metadata) = 'object') IS FALSE THEN 'transactions_metadata_check'
    WHEN (length(t.failure_reason) <= 1000) IS FALSE THEN 'transactions_failure_reason_check'
    WHEN (t.retry_count BETWEEN 0 AND 3) IS FALSE THEN 'transactions_retry_count_check'
    WHEN (length(t.idempotency_key) BETWEEN 1 AND 255) IS FALSE THEN 'transactions_idempotency_key_check'
    WHEN ((t.type = 'TRANSFER') = (t.destination_wallet_id IS NOT NULL)) IS FALSE THEN 'transactions_transfer_dest'
    WHEN (t.destination_wallet_id IS NULL OR t.destination_wallet_id <> t.wallet_id) IS FALSE THEN 'transactions_not_self'
    WHEN (t.type = 'PAYOUT' OR t.expires_at IS NULL) IS FALSE THEN 'transactions_hold_expiry'
    WHEN (t.type = 'PAYOUT' OR t.captured_amount IS NULL) IS FALSE THEN 'transactions_capture_payout'
    WHEN (t.type = 'REFUND' OR t.original_transaction_id IS NULL) IS FALSE THEN 'transactions_refund_original'
    WHEN (t.status NOT IN ('PENDING', 'FAILED') OR t.type = 'PAYOUT') IS FALSE THEN 'transactions_pending_payout'
  END;
BEGIN
  IF v_broken IS NOT NULL THEN PERFORM pb_rule_broken('transactions', v_broken); END IF;
  RETURN true;
END
$$;

CREATE FUNCTION pb_ledger_entries_rules(e ledger_entries) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_broken text := CASE
    WHEN (e.system_account ~ '^[A-Z]{3,5}$') IS FALSE THEN 'ledger_entries_system_account_check'
    WHEN (e.currency ~ '^[A-Z]{3,5}$') IS FALSE THEN 'ledger_entries_currency_check'
    WHEN (e.amount <> 0) IS FALSE THEN 'ledger_entries_amount_check'
    WHEN ((e.wallet_id IS NULL) <> (e.system_account IS NULL)) IS FALSE THEN 'ledger_entries_one_account'
    WHEN (e.system_account IS NULL OR e.system_account = e.currency) IS FALSE THEN 'ledger_entries_system_currency'
    WHEN (e.wallet_id IS NULL OR (e.balance_after IS NOT NULL AND e.balance_after >= 0)) IS FALSE THEN 'ledger_entries_wallet_balance'
  END;
BEGIN
  IF v_broken IS NOT NULL THEN PERFORM pb_rule_broken('ledger_entries', v_broken); END IF;
  RETURN true;
END
$$;

CREATE FUNCTION pb_outbox_rules(o outbox) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_broken text := CASE
    WHEN (o.type ~ '^[a-z_]+(\.[a-z_]+)+$') IS FALSE THEN 'outbox_type_check'
    WHEN (o.sequence >= 1) IS FALSE THEN 'outbox_sequence_check'
    WHEN (o.status IN ('PENDING', 'PUBLISHED', 'FAILED')) IS FALSE THEN 'outbox_status_check'
    WHEN (o.aggregate_type IN ('user', 'wallet', 'transaction')) IS FALSE THEN 'outbox_aggregate_type_check'
  END;
BEGIN
  IF v_broken IS NOT NULL THEN PERFORM pb_rule_broken('outbox', v_broken); END IF;
  RETURN true;
END
$$;

CREATE FUNCTION pb_idempotency_keys_rules(k idempotency_keys) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_broken text := CASE
    WHEN (k.status_code BETWEEN 200 AND 599) IS FALSE THEN 'idempotency_keys_status_code_check'
    WHEN (length(k.scope) BETWEEN 1 AND 255) IS FALSE THEN 'idempotency_keys_scope_check'
    WHEN (length(k.key) BETWEEN 1 AND 255) IS FALSE THEN 'idempotency_keys_key_check'
  END;
BEGIN
  IF v_broken IS NOT NULL THEN PERFORM pb_rule_broken('idempotency_keys', v_broken); END IF;
  RETURN true;
END
$$;

ALTER TABLE wallets
  DROP CONSTRAINT wallets_currency_check, DROP CONSTRAINT wallets_kind_check, DROP CONSTRAINT wallets_status_check,
  DROP CONSTRAINT wallets_available_balance_check, DROP CONSTRAINT wallets_pending_balance_check,
  DROP CONSTRAINT wallets_daily_limit_check, DROP CONSTRAINT wallets_monthly_limit_check,
  DROP CONSTRAINT wallets_monthly_ge_daily, DROP CONSTRAINT wallets_closed_empty, DROP CONSTRAINT wallets_closed_at,
  ADD CONSTRAINT wallets_rules CHECK (pb_wallets_rules(wallets.*));
ALTER TABLE transactions
  DROP CONSTRAINT transactions_type_check, DROP CONSTRAINT transactions_status_check,
  DROP CONSTRAINT transactions_direction_check, DROP CONSTRAINT transactions_amount_check, DROP CONSTRAINT transactions_check,
  DROP CONSTRAINT transactions_currency_check, DROP CONSTRAINT transactions_description_check,
  DROP CONSTRAINT transactions_external_reference_check, DROP CONSTRAINT transactions_metadata_check,
  DROP CONSTRAINT transactions_failure_reason_check, DROP CONSTRAINT transactions_retry_count_check,
  DROP CONSTRAINT transactions_idempotency_key_check, DROP CONSTRAINT transactions_transfer_dest,
  DROP CONSTRAINT transactions_not_self, DROP CONSTRAINT transactions_hold_expiry, DROP CONSTRAINT transactions_capture_payout,
  DROP CONSTRAINT transactions_refund_original, DROP CONSTRAINT transactions_pending_payout,
  ADD CONSTRAINT transactions_rules CHECK (pb_transactions_rules(transactions.*));
ALTER TABLE ledger_entries
  DROP CONSTRAINT ledger_entries_system_account_check, DROP CONSTRAINT ledger_entries_currency_check,
  DROP CONSTRAINT ledger_entries_amount_check, DROP CONSTRAINT ledger_entries_one_account,
  DROP CONSTRAINT ledger_entries_system_currency, DROP CONSTRAINT ledger_entries_wallet_balance,
  ADD CONSTRAINT ledger_entries_rules CHECK (pb_ledger_entries_rules(ledger_entries.*));
ALTER TABLE outbox
  DROP CONSTRAINT outbox_type_check, DROP CONSTRAINT outbox_sequence_check, DROP CONSTRAINT outbox_status_check,
  DROP CONSTRAINT outbox_aggregate_type_check,
  ADD CONSTRAINT outbox_rules CHECK (pb_outbox_rules(outbox.*));
ALTER TABLE idempotency_keys
  DROP CONSTRAINT idempotency_keys_status_code_check, DROP CONSTRAINT idempotency_keys_scope_check,
  DROP CONSTRAINT idempotency_keys_key_check,
  ADD CONSTRAINT idempotency_keys_rules CHECK (pb_idempotency_keys_rules(idempotency_keys.*));
