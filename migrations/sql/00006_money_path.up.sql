-- The money path (src/ledger/postings.ts calls pb_post / pb_post_http). Every balance change
-- runs here, in ONE statement: row locks are taken and released with the fewest possible
-- client round trips, which is what bounds throughput on a hot wallet.
--
-- Lock order, everywhere: transaction rows first (hold actions, a refund's original), then
-- wallet rows in ascending id order. Opposite transfers therefore never deadlock.
--
-- Checks run BEFORE any write, so a business rejection returns an error object and leaves the
-- transaction clean: the rejection may still be stored as an idempotency record.
--
-- The outbox events (SPEC §2.5) are written here too, in the same statement as the change.
-- Their per-aggregate sequences come from event_seq, bumped by the very UPDATE/INSERT that
-- changes the row (no second write of the row; the row lock orders concurrent writers).
--
-- pb_post_http also renders the HTTP response body (amounts formatted with the currency's
-- exponent, timestamps as ISO 8601 UTC with milliseconds, like src/ledger/render.ts), stores
-- it as the idempotency record and returns it: JS forwards the text as is, so a whole
-- idempotent posting is ONE auto-committed statement, with no BEGIN/COMMIT round trips while
-- rows are locked.
--
-- Results handed to JS are jsonb with every bigint rendered as TEXT: JSON numbers above 2^53
-- would lose precision in the client.
--
-- The small SQL helpers below are declared with their TRUE volatility (to_json and
-- jsonb_build_object are STABLE): PostgreSQL inlines a SQL function only when its declared
-- volatility is not stricter than its body's. A non-inlined SQL function is parsed and planned
-- again on every call of every posting (measured: ~17% of the backend's CPU per transfer).

CREATE FUNCTION pb_wallet_row(w wallets) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', w.id, 'user_id', w.user_id, 'currency', w.currency, 'kind', w.kind, 'status', w.status,
    'available_balance', w.available_balance::text, 'pending_balance', w.pending_balance::text,
    'daily_limit', w.daily_limit::text, 'monthly_limit', w.monthly_limit::text,
    'version', w.version::text, 'created_at', w.created_at, 'updated_at', w.updated_at,
    'closed_at', w.closed_at)
$$;

CREATE FUNCTION pb_tx_row(t transactions) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', t.id, 'type', t.type, 'status', t.status, 'wallet_id', t.wallet_id,
    'destination_wallet_id', t.destination_wallet_id, 'direction', t.direction,
    'amount', t.amount::text, 'captured_amount', t.captured_amount::text, 'currency', t.currency,
    'description', t.description, 'external_reference', t.external_reference, 'metadata', t.metadata,
    'failure_reason', t.failure_reason, 'retry_count', t.retry_count,
    'idempotency_key', t.idempotency_key, 'original_transaction_id', t.original_transaction_id,
    'actor', t.actor, 'expires_at', t.expires_at, 'created_at', t.created_at,
    'updated_at', t.updated_at, 'processed_at', t.processed_at, 'completed_at', t.completed_at)
$$;

-- Exact major-unit rendering of minor units (mirror of formatAmount and CURRENCIES in
-- src/ledger/money.ts): bigint × numeric is exact and takes the factor's scale, so the text
-- always carries exactly the currency's digits. NULL for a currency outside the registry
-- (wallet creation only accepts registry codes). One jsonb lookup rather than a CASE over the
-- registry: this is inlined some 17 times into every posting's rendering, and PostgreSQL
-- rebuilds each inlined expression tree in every transaction, so its size is per-posting CPU.
CREATE FUNCTION pb_fmt(a bigint, c text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (a * ('{"USD": 0.01, "EUR": 0.01, "GBP": 0.01, "JPY": 1, "KWD": 0.001, "BTC": 0.00000001,
                 "ETH": 0.000000001, "USDT": 0.000001, "USDC": 0.000001}'::jsonb -> c)::numeric)::text
$$;
-- A JSON string (or null) for any text.
CREATE FUNCTION pb_js(v text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(to_json(v)::text, 'null')
$$;
-- A quoted amount (or null).
CREATE FUNCTION pb_jamt(a bigint, c text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce('"' || pb_fmt(a, c) || '"', 'null')
$$;
-- Date#toISOString: UTC, milliseconds (truncated, as the driver's Date is), 'Z'.
CREATE FUNCTION pb_ts(v timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce('"' || to_char(v AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"', 'null')
$$;

-- transactionJson (src/ledger/render.ts): same keys in the same order, compact JSON text.
CREATE FUNCTION pb_tx_json(t transactions) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT '{"id":"' || t.id || '","type":"' || t.type || '","status":"' || t.status
    || '","direction":"' || t.direction || '","wallet_id":"' || t.wallet_id
    || '","destination_wallet_id":' || coalesce('"' || t.destination_wallet_id || '"', 'null')
    || ',"amount":' || pb_jamt(t.amount, t.currency)
    || ',"captured_amount":' || pb_jamt(t.captured_amount, t.currency)
    || ',"currency":"' || t.currency || '","description":' || pb_js(t.description)
    || ',"external_reference":' || pb_js(t.external_reference) || ',"metadata":' || t.metadata::text
    || ',"failure_reason":' || pb_js(t.failure_reason) || ',"retry_count":' || t.retry_count
    || ',"idempotency_key":' || pb_js(t.idempotency_key)
    || ',"original_transaction_id":' || coalesce('"' || t.original_transaction_id || '"', 'null')
    || ',"actor":{"id":' || pb_js(t.actor->>'id') || ',"role":' || pb_js(t.actor->>'role') || '}'
    || ',"expires_at":' || pb_ts(t.expires_at) || ',"created_at":' || pb_ts(t.created_at)
    || ',"updated_at":' || pb_ts(t.updated_at) || ',"processed_at":' || pb_ts(t.processed_at)
    || ',"completed_at":' || pb_ts(t.completed_at) || '}'
$$;

-- renderWallet (src/modules/wallets/model.ts): same keys in the same order.
CREATE FUNCTION pb_wallet_json(w wallets) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT '{"id":"' || w.id || '","user_id":"' || w.user_id || '","currency":"' || w.currency
    || '","kind":"' || w.kind || '","status":"' || w.status
    || '","available_balance":' || pb_jamt(w.available_balance, w.currency)
    || ',"pending_balance":' || pb_jamt(w.pending_balance, w.currency)
    || ',"total_balance":' || pb_jamt(w.available_balance + w.pending_balance, w.currency)
    || ',"daily_limit":' || pb_jamt(w.daily_limit, w.currency)
    || ',"monthly_limit":' || pb_jamt(w.monthly_limit, w.currency)
    || ',"version":' || w.version || ',"created_at":' || pb_ts(w.created_at)
    || ',"updated_at":' || pb_ts(w.updated_at) || '}'
$$;

-- walletMovementJson: the data of wallet.credited / wallet.debited.
CREATE FUNCTION pb_movement(w wallets, p_tx uuid, p_amount bigint) RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object('wallet_id', w.id, 'transaction_id', p_tx, 'amount', pb_fmt(p_amount, w.currency),
                            'currency', w.currency,
                            'balance_after', pb_fmt(w.available_balance + w.pending_balance, w.currency))
$$;

-- What every operation returns: a rejection (err) or the transaction and its wallet(s).
CREATE TYPE pb_result AS (err jsonb, t transactions, ws wallets[]);

-- A business rejection as jsonb (pb_check_outgoing) and as an operation result (pb_reject).
CREATE FUNCTION pb_err(p_code text, p_status integer, p_detail text, p_extra jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('error', p_code, 'status', p_status, 'detail', p_detail, 'extra', p_extra)
$$;
CREATE FUNCTION pb_reject(p_code text, p_status integer, p_detail text, p_extra jsonb DEFAULT NULL)
RETURNS pb_result LANGUAGE sql STABLE AS $$
  SELECT ROW(pb_err(p_code, p_status, p_detail, p_extra), NULL, NULL)::pb_result
$$;
CREATE FUNCTION pb_fail(p_err jsonb) RETURNS pb_result LANGUAGE sql IMMUTABLE AS $$
  SELECT ROW(p_err, NULL, NULL)::pb_result
$$;

-- The jsonb result of pb_post (src/ledger/types.ts parses it).
CREATE FUNCTION pb_ok(r pb_result) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('transaction', pb_tx_row(r.t),
                            'wallets', (SELECT jsonb_agg(pb_wallet_row(r.ws[i]) ORDER BY i)
                                          FROM generate_subscripts(r.ws, 1) AS i))
$$;

-- Rules for money leaving a wallet (debit, transfer out, hold, retry): status, KYC, available
-- funds, and the daily/monthly limits. The caller holds the wallet's row lock, and each
-- statement of a volatile function reads a fresh snapshot, so the limit sums see every
-- earlier committed outgoing transaction of this wallet: no write skew.
-- Returns NULL when allowed, else a rejection.
CREATE FUNCTION pb_check_outgoing(w wallets, p_amount bigint, p_kyc boolean, p_limits boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_kyc text;
  v_day bigint;
  v_month bigint;
  v_day_start timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  v_month_start timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
  IF w.status <> 'ACTIVE' THEN
    RETURN pb_err('WALLET_NOT_ACTIVE', 422, format('The wallet is %s; only an ACTIVE wallet can send money.', w.status),
                     jsonb_build_object('wallet_status', w.status));
  END IF;
  IF p_kyc THEN
    SELECT kyc_status INTO v_kyc FROM users WHERE id = w.user_id;
    IF v_kyc IS DISTINCT FROM 'VERIFIED' THEN
      RETURN pb_err('USER_NOT_VERIFIED', 422, 'The wallet owner''s KYC is not VERIFIED.');
    END IF;
  END IF;
  IF w.available_balance < p_amount THEN
    RETURN pb_err('INSUFFICIENT_BALANCE', 422, 'The available balance does not cover this amount.');
  END IF;
  IF p_limits AND (w.daily_limit IS NOT NULL OR w.monthly_limit IS NOT NULL) THEN
    SELECT coalesce(sum(coalesce(captured_amount, amount)) FILTER (WHERE created_at >= v_day_start), 0),
           coalesce(sum(coalesce(captured_amount, amount)), 0)
      INTO v_day, v_month
      FROM transactions
     WHERE wallet_id = w.id AND created_at >= least(v_month_start, v_day_start)
       AND type IN ('WITHDRAW', 'TRANSFER', 'PAYOUT') AND status IN ('PENDING', 'COMPLETED');
    IF w.daily_limit IS NOT NULL AND v_day + p_amount > w.daily_limit THEN
      RETURN pb_err('DAILY_LIMIT_EXCEEDED', 422, 'This would exceed the wallet''s daily limit.');
    END IF;
    IF w.monthly_limit IS NOT NULL AND v_month + p_amount > w.monthly_limit THEN
      RETURN pb_err('MONTHLY_LIMIT_EXCEEDED', 422, 'This would exceed the wallet''s monthly limit.');
    END IF;
  END IF;
  RETURN NULL;
END
$$;

-- One wallet against the currency's system account: DEPOSIT, WITHDRAW, FEE, REFUND, ADJUSTMENT.
CREATE FUNCTION pb_move(p jsonb) RETURNS pb_result LANGUAGE plpgsql AS $$
DECLARE
  v_type text := p->>'type';
  v_dir text := p->>'direction';
  v_amount bigint := (p->>'amount')::bigint;
  v_owner uuid := (p->>'owner_id')::uuid;
  v_orig_id uuid := (p->>'original_transaction_id')::uuid;
  v_signed bigint;
  v_refunded bigint;
  v_err jsonb;
  o transactions;
  w wallets;
  t transactions;
BEGIN
  IF v_orig_id IS NOT NULL THEN
    -- The original is locked first (transactions before wallets): concurrent refunds of one
    -- transaction serialise here, so their sum can never exceed it.
    SELECT * INTO o FROM transactions WHERE id = v_orig_id FOR UPDATE;
    IF NOT FOUND THEN
      RETURN pb_reject('TRANSACTION_NOT_FOUND', 404, 'The original transaction does not exist.');
    END IF;
  END IF;
  SELECT * INTO w FROM wallets WHERE id = (p->>'wallet_id')::uuid FOR UPDATE;
  IF NOT FOUND OR (v_owner IS NOT NULL AND w.user_id <> v_owner) THEN
    RETURN pb_reject('WALLET_NOT_FOUND', 404, 'Wallet not found.');
  END IF;
  IF v_dir = 'credit' THEN
    IF w.status = 'CLOSED' THEN
      RETURN pb_reject('WALLET_CLOSED', 422, 'The wallet is CLOSED and cannot receive money.');
    END IF;
    IF v_orig_id IS NOT NULL THEN
      IF o.wallet_id <> w.id OR o.direction <> 'debit' OR o.status <> 'COMPLETED' THEN
        RETURN pb_reject('VALIDATION_ERROR', 400, 'original_transaction_id: must be a completed outgoing transaction of this wallet',
          jsonb_build_object('errors', jsonb_build_array(jsonb_build_object('field', 'original_transaction_id',
            'message', 'must be a completed outgoing transaction of this wallet', 'code', 'invalid'))));
      END IF;
      SELECT coalesce(sum(amount), 0) INTO v_refunded FROM transactions
       WHERE original_transaction_id = v_orig_id AND status = 'COMPLETED';
      IF v_refunded + v_amount > coalesce(o.captured_amount, o.amount) THEN
        RETURN pb_reject('REFUND_EXCEEDS_ORIGINAL', 422, 'Refunds would exceed the original transaction''s amount.',
          jsonb_build_object('already_refunded', v_refunded::text));
      END IF;
    END IF;
    v_signed := v_amount;
  ELSE
    v_err := pb_check_outgoing(w, v_amount, v_type = 'WITHDRAW', v_type = 'WITHDRAW');
    IF v_err IS NOT NULL THEN RETURN pb_fail(v_err); END IF;
    v_signed := -v_amount;
  END IF;

  -- event_seq: one wallet event; two transaction events (created, completed).
  UPDATE wallets SET available_balance = available_balance + v_signed, version = version + 1, updated_at = now(),
                     event_seq = event_seq + 1
   WHERE id = w.id RETURNING * INTO w;
  INSERT INTO transactions (type, status, wallet_id, direction, amount, currency, description, external_reference,
                            metadata, idempotency_key, original_transaction_id, actor, processed_at, completed_at, event_seq)
  VALUES (v_type, 'COMPLETED', w.id, v_dir, v_amount, w.currency, p->>'description', p->>'external_reference',
          coalesce(p->'metadata', '{}'::jsonb), p->>'idempotency_key', v_orig_id, p->'actor', now(), now(), 2)
  RETURNING * INTO t;
  INSERT INTO ledger_entries (transaction_id, wallet_id, system_account, currency, amount, balance_after)
  VALUES (t.id, w.id, NULL, w.currency, v_signed, w.available_balance + w.pending_balance),
         (t.id, NULL, w.currency, w.currency, -v_signed, NULL);
  RETURN ROW(NULL, t, ARRAY[w])::pb_result;
END
$$;

CREATE FUNCTION pb_transfer(p jsonb) RETURNS pb_result LANGUAGE plpgsql AS $$
DECLARE
  v_src_id uuid := (p->>'wallet_id')::uuid;
  v_dst_id uuid := (p->>'destination_wallet_id')::uuid;
  v_amount bigint := (p->>'amount')::bigint;
  v_owner uuid := (p->>'owner_id')::uuid;
  v_err jsonb;
  r wallets;
  s wallets;
  d wallets;
  t transactions;
BEGIN
  -- Both rows locked by one statement, in id order.
  FOR r IN SELECT * FROM wallets WHERE id IN (v_src_id, v_dst_id) ORDER BY id FOR UPDATE LOOP
    IF r.id = v_src_id THEN s := r; ELSE d := r; END IF;
  END LOOP;
  IF s.id IS NULL OR (v_owner IS NOT NULL AND s.user_id <> v_owner) THEN
    RETURN pb_reject('WALLET_NOT_FOUND', 404, 'Wallet not found.');
  END IF;
  IF v_src_id = v_dst_id THEN
    RETURN pb_reject('SELF_TRANSFER', 422, 'A wallet cannot transfer to itself.');
  END IF;
  IF d.id IS NULL THEN
    RETURN pb_reject('DESTINATION_WALLET_NOT_FOUND', 422, 'The destination wallet does not exist.');
  END IF;
  IF d.status = 'CLOSED' THEN
    RETURN pb_reject('WALLET_CLOSED', 422, 'The destination wallet is CLOSED and cannot receive money.');
  END IF;
  IF d.currency <> s.currency THEN
    RETURN pb_reject('CURRENCY_MISMATCH', 422, format('The source wallet holds %s, the destination %s.', s.currency, d.currency),
                     jsonb_build_object('source_currency', s.currency, 'destination_currency', d.currency));
  END IF;
  v_err := pb_check_outgoing(s, v_amount, true, true);
  IF v_err IS NOT NULL THEN RETURN pb_fail(v_err); END IF;

  FOR r IN UPDATE wallets SET available_balance = available_balance + CASE WHEN id = v_src_id THEN -v_amount ELSE v_amount END,
                              version = version + 1, updated_at = now(), event_seq = event_seq + 1
            WHERE id IN (v_src_id, v_dst_id) RETURNING * LOOP
    IF r.id = v_src_id THEN s := r; ELSE d := r; END IF;
  END LOOP;
  INSERT INTO transactions (type, status, wallet_id, destination_wallet_id, direction, amount, currency, description,
                            metadata, idempotency_key, actor, processed_at, completed_at, event_seq)
  VALUES ('TRANSFER', 'COMPLETED', s.id, d.id, 'debit', v_amount, s.currency, p->>'description',
          coalesce(p->'metadata', '{}'::jsonb), p->>'idempotency_key', p->'actor', now(), now(), 2)
  RETURNING * INTO t;
  INSERT INTO ledger_entries (transaction_id, wallet_id, currency, amount, balance_after)
  VALUES (t.id, s.id, s.currency, -v_amount, s.available_balance + s.pending_balance),
         (t.id, d.id, d.currency, v_amount, d.available_balance + d.pending_balance);
  RETURN ROW(NULL, t, ARRAY[s, d])::pb_result;
END
$$;

-- A hold: a PENDING PAYOUT that moves money from available to pending. No ledger entries:
-- the wallet's total does not change.
CREATE FUNCTION pb_hold(p jsonb) RETURNS pb_result LANGUAGE plpgsql AS $$
DECLARE
  v_amount bigint := (p->>'amount')::bigint;
  v_owner uuid := (p->>'owner_id')::uuid;
  v_err jsonb;
  w wallets;
  t transactions;
BEGIN
  SELECT * INTO w FROM wallets WHERE id = (p->>'wallet_id')::uuid FOR UPDATE;
  IF NOT FOUND OR (v_owner IS NOT NULL AND w.user_id <> v_owner) THEN
    RETURN pb_reject('WALLET_NOT_FOUND', 404, 'Wallet not found.');
  END IF;
  v_err := pb_check_outgoing(w, v_amount, true, true);
  IF v_err IS NOT NULL THEN RETURN pb_fail(v_err); END IF;
  UPDATE wallets SET available_balance = available_balance - v_amount, pending_balance = pending_balance + v_amount,
                     version = version + 1, updated_at = now()
   WHERE id = w.id RETURNING * INTO w;
  INSERT INTO transactions (type, status, wallet_id, direction, amount, currency, description, metadata,
                            idempotency_key, actor, expires_at, event_seq)
  VALUES ('PAYOUT', 'PENDING', w.id, 'debit', v_amount, w.currency, p->>'description', coalesce(p->'metadata', '{}'::jsonb),
          p->>'idempotency_key', p->'actor', now() + make_interval(secs => (p->>'expires_in_seconds')::double precision), 1)
  RETURNING * INTO t;
  RETURN ROW(NULL, t, ARRAY[w])::pb_result;
END
$$;

-- Hold actions: complete (full or partial), fail, cancel, retry, expire. The transition rules
-- mirror HOLD_TRANSITIONS in src/ledger/hold-states.ts (tests check both agree).
CREATE FUNCTION pb_hold_action(p jsonb) RETURNS pb_result LANGUAGE plpgsql AS $$
DECLARE
  v_action text := p->>'op';
  v_owner uuid := (p->>'owner_id')::uuid;
  v_captured bigint;
  v_err jsonb;
  v_dur interval;
  t transactions;
  w wallets;
BEGIN
  IF v_action = 'expire' AND p->>'transaction_id' IS NULL THEN
    -- The sweeper: the oldest expired hold nobody else is working on. SKIP LOCKED lets
    -- replicas sweep side by side without processing one hold twice.
    SELECT * INTO t FROM transactions
     WHERE type = 'PAYOUT' AND status = 'PENDING' AND expires_at <= now()
     ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN RETURN pb_fail(jsonb_build_object('none', true)); END IF;
  ELSE
    SELECT * INTO t FROM transactions WHERE id = (p->>'transaction_id')::uuid FOR UPDATE;
    IF NOT FOUND OR (v_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM wallets WHERE id IN (t.wallet_id, t.destination_wallet_id) AND user_id = v_owner)) THEN
      RETURN pb_reject('TRANSACTION_NOT_FOUND', 404, 'Transaction not found.');
    END IF;
  END IF;

  IF t.type <> 'PAYOUT' OR NOT (
       (t.status = 'PENDING' AND v_action IN ('complete', 'fail', 'cancel', 'expire'))
    OR (t.status = 'FAILED' AND v_action = 'retry')) THEN
    RETURN pb_reject('TRANSACTION_INVALID_TRANSITION', 409,
                     format('Cannot %s a %s %s transaction.', v_action, t.status, t.type),
                     jsonb_build_object('current_status', t.status));
  END IF;
  IF v_action = 'complete' THEN
    IF t.expires_at <= now() THEN
      RETURN pb_reject('HOLD_EXPIRED', 409, 'The hold has expired.', jsonb_build_object('expires_at', t.expires_at));
    END IF;
    v_captured := coalesce((p->>'amount')::bigint, t.amount);
    IF v_captured > t.amount THEN
      RETURN pb_reject('AMOUNT_EXCEEDS_HOLD', 422, 'The amount exceeds the held amount.',
                       jsonb_build_object('held_amount', t.amount::text));
    END IF;
  ELSIF v_action = 'expire' AND t.expires_at > now() THEN
    RETURN pb_reject('TRANSACTION_INVALID_TRANSITION', 409, 'The hold has not expired.',
                     jsonb_build_object('current_status', t.status));
  ELSIF v_action = 'retry' AND t.retry_count >= 3 THEN
    RETURN pb_reject('RETRY_LIMIT_REACHED', 409, 'This payout was already retried 3 times.',
                     jsonb_build_object('retry_count', t.retry_count));
  END IF;

  SELECT * INTO w FROM wallets WHERE id = t.wallet_id FOR UPDATE;
  CASE v_action
    WHEN 'complete' THEN
      UPDATE wallets SET pending_balance = pending_balance - t.amount,
                         available_balance = available_balance + (t.amount - v_captured),
                         version = version + 1, updated_at = now(), event_seq = event_seq + 1
       WHERE id = w.id RETURNING * INTO w;
      UPDATE transactions SET status = 'COMPLETED', captured_amount = v_captured, processed_at = now(),
                              completed_at = now(), updated_at = now(), event_seq = event_seq + 1
       WHERE id = t.id RETURNING * INTO t;
      INSERT INTO ledger_entries (transaction_id, wallet_id, system_account, currency, amount, balance_after)
      VALUES (t.id, w.id, NULL, w.currency, -v_captured, w.available_balance + w.pending_balance),
             (t.id, NULL, w.currency, w.currency, v_captured, NULL);
    WHEN 'fail', 'cancel', 'expire' THEN
      UPDATE wallets SET pending_balance = pending_balance - t.amount, available_balance = available_balance + t.amount,
                         version = version + 1, updated_at = now()
       WHERE id = w.id RETURNING * INTO w;
      UPDATE transactions SET status = CASE WHEN v_action = 'fail' THEN 'FAILED' ELSE 'CANCELLED' END,
                              failure_reason = CASE WHEN v_action = 'expire' THEN 'expired' ELSE p->>'reason' END,
                              processed_at = now(), updated_at = now(), event_seq = event_seq + 1
       WHERE id = t.id RETURNING * INTO t;
    WHEN 'retry' THEN
      v_err := pb_check_outgoing(w, t.amount, true, true);
      IF v_err IS NOT NULL THEN RETURN pb_fail(v_err); END IF;
      -- A retried hold gets a fresh expiry of its original length.
      v_dur := t.expires_at - t.created_at;
      UPDATE wallets SET available_balance = available_balance - t.amount, pending_balance = pending_balance + t.amount,
                         version = version + 1, updated_at = now()
       WHERE id = w.id RETURNING * INTO w;
      UPDATE transactions SET status = 'PENDING', retry_count = retry_count + 1, failure_reason = NULL,
                              processed_at = NULL, expires_at = now() + v_dur, updated_at = now(),
                              event_seq = event_seq + 1
       WHERE id = t.id RETURNING * INTO t;
  END CASE;
  RETURN ROW(NULL, t, ARRAY[w])::pb_result;
END
$$;

-- Dispatch to the operation.
CREATE FUNCTION pb_apply(p jsonb) RETURNS pb_result LANGUAGE plpgsql AS $$
BEGIN
  CASE p->>'op'
    WHEN 'move' THEN RETURN pb_move(p);
    WHEN 'transfer' THEN RETURN pb_transfer(p);
    WHEN 'hold' THEN RETURN pb_hold(p);
    WHEN 'complete', 'fail', 'cancel', 'retry', 'expire' THEN RETURN pb_hold_action(p);
    WHEN 'reject' THEN RETURN pb_reject(p->>'code', (p->>'status')::integer, p->>'detail');
  END CASE;
  RAISE EXCEPTION 'pb_apply: unknown op %', p->>'op';
END
$$;

-- The outbox events of SPEC §2.5, in order, for a successful operation (one INSERT, so the
-- outbox statement trigger fires once). Sequences: the aggregate's event_seq after the
-- operation's own bump is the sequence of its last event. p_tx is pb_tx_json(r.t) as jsonb.
CREATE FUNCTION pb_emit(p jsonb, r pb_result, p_tx jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_actor jsonb := jsonb_build_object('id', p->'actor'->>'id', 'role', p->'actor'->>'role');
  v_trace text := p->>'trace_id';
  t transactions := r.t;
  a wallets := r.ws[1];
  b wallets := r.ws[2];
BEGIN
  CASE p->>'op'
    WHEN 'move' THEN
      INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, trace_id, actor, data) VALUES
        ('transaction.created', 'transaction', t.id, t.event_seq - 1, v_trace, v_actor, p_tx),
        (CASE WHEN t.direction = 'credit' THEN 'wallet.credited' ELSE 'wallet.debited' END,
         'wallet', a.id, a.event_seq, v_trace, v_actor, pb_movement(a, t.id, t.amount)),
        ('transaction.completed', 'transaction', t.id, t.event_seq, v_trace, v_actor, p_tx);
    WHEN 'transfer' THEN
      INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, trace_id, actor, data) VALUES
        ('transaction.created', 'transaction', t.id, t.event_seq - 1, v_trace, v_actor, p_tx),
        ('wallet.debited', 'wallet', a.id, a.event_seq, v_trace, v_actor, pb_movement(a, t.id, t.amount)),
        ('wallet.credited', 'wallet', b.id, b.event_seq, v_trace, v_actor, pb_movement(b, t.id, t.amount)),
        ('transaction.completed', 'transaction', t.id, t.event_seq, v_trace, v_actor, p_tx);
    WHEN 'hold' THEN
      INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, trace_id, actor, data) VALUES
        ('transaction.created', 'transaction', t.id, t.event_seq, v_trace, v_actor, p_tx);
    WHEN 'complete' THEN
      INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, trace_id, actor, data) VALUES
        ('wallet.debited', 'wallet', a.id, a.event_seq, v_trace, v_actor,
         pb_movement(a, t.id, coalesce(t.captured_amount, t.amount))),
        ('transaction.completed', 'transaction', t.id, t.event_seq, v_trace, v_actor, p_tx);
    WHEN 'fail', 'cancel', 'expire', 'retry' THEN
      INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, trace_id, actor, data) VALUES
        (CASE p->>'op' WHEN 'fail' THEN 'transaction.failed' WHEN 'retry' THEN 'transaction.retried'
                       ELSE 'transaction.cancelled' END,
         'transaction', t.id, t.event_seq, v_trace, v_actor, p_tx);
    WHEN 'reject' THEN NULL;
  END CASE;
END
$$;

-- Claims the idempotency key for this transaction (pg_try_advisory_xact_lock: not acquired =
-- the same key is in flight) and looks for a stored outcome. Returns NULL when the request may
-- proceed, else {idem: in_use | reused | replay, status, body}.
CREATE FUNCTION pb_idem_claim(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_scope text := p->>'idem_scope';
  v_key text := p->>'idem_key';
  k record;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended(length(v_scope)::text || ':' || v_scope || ':' || v_key, 7)) THEN
    RETURN jsonb_build_object('idem', 'in_use');
  END IF;
  SELECT fingerprint, status_code, response_body INTO k FROM idempotency_keys WHERE scope = v_scope AND key = v_key;
  IF NOT FOUND THEN RETURN NULL; END IF;
  IF k.fingerprint = p->>'idem_fingerprint' THEN
    RETURN jsonb_build_object('idem', 'replay', 'status', k.status_code, 'body', k.response_body);
  END IF;
  RETURN jsonb_build_object('idem', 'reused');
END
$$;

-- Entry point of the JS-rendered path (src/ledger/postings.ts): the change and its events.
-- With an idempotency scope the key is claimed first; the caller renders the response and
-- inserts the record later in the same transaction. Without one this is a whole posting in
-- one auto-committed statement.
CREATE FUNCTION pb_post(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_claim jsonb;
  r pb_result;
BEGIN
  IF p->>'idem_scope' IS NOT NULL THEN
    v_claim := pb_idem_claim(p);
    IF v_claim IS NOT NULL THEN RETURN v_claim; END IF;
  END IF;
  r := pb_apply(p);
  IF r.err IS NOT NULL THEN RETURN r.err; END IF;
  PERFORM pb_emit(p, r, pb_tx_json(r.t)::jsonb);
  RETURN pb_ok(r);
END
$$;

-- toProblem (src/http/errors.ts) of a stored rejection; the constants (type base, titles),
-- the path and the request id come from JS in p.
CREATE FUNCTION pb_problem(p jsonb, e jsonb) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT '{"type":' || pb_js((p->>'problem_type_base') || replace(lower(e->>'error'), '_', '-'))
      || ',"title":' || pb_js(coalesce(p->'titles'->>(e->>'status'), 'Error'))
      || ',"status":' || (e->>'status')
      || ',"detail":' || pb_js(e->>'detail')
      || ',"instance":' || pb_js(p->>'instance')
      || ',"code":' || pb_js(e->>'error')
      || ',"request_id":' || pb_js(p->>'request_id')
      || coalesce((SELECT string_agg(',' || to_json(x.key)::text || ':' || x.value::text, '')
                     FROM jsonb_each(CASE WHEN jsonb_typeof(e->'extra') = 'object' THEN e->'extra' ELSE '{}'::jsonb END) x), '')
      || '}'
$$;

-- Entry point of the HTTP path: claim, change, events, rendered response, idempotency record,
-- all in ONE statement (run auto-committed by the caller). o_kind: in_use | reused | replay |
-- posted | rejected (stored business rejection) | error (not stored: o_body is the rejection
-- jsonb). o_info carries what the metrics need of a posted transaction.
CREATE FUNCTION pb_post_http(p jsonb, OUT o_kind text, OUT o_status integer, OUT o_body text, OUT o_info jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_claim jsonb := pb_idem_claim(p);
  v_tx text;
  v_tx_id uuid;
  r pb_result;
BEGIN
  IF v_claim IS NOT NULL THEN
    o_kind := v_claim->>'idem';
    o_status := (v_claim->>'status')::integer;
    o_body := v_claim->>'body';
    RETURN;
  END IF;
  r := pb_apply(p);
  IF r.err IS NOT NULL THEN
    o_status := (r.err->>'status')::integer;
    IF NOT coalesce(p->'stored_statuses' @> to_jsonb(o_status), false) THEN
      o_kind := 'error';
      o_body := r.err::text;
      RETURN;
    END IF;
    o_kind := 'rejected';
    o_body := pb_problem(p, r.err);
  ELSE
    v_tx := pb_tx_json(r.t);
    PERFORM pb_emit(p, r, v_tx::jsonb);
    o_kind := 'posted';
    o_status := (p->>'success_status')::integer;
    o_body := CASE WHEN p->>'op' = 'transfer'
      THEN '{"transaction":' || v_tx || ',"source_wallet":' || pb_wallet_json(r.ws[1])
           || ',"destination_wallet":' || pb_wallet_json(r.ws[2]) || '}'
      ELSE '{"transaction":' || v_tx || ',"wallet":' || pb_wallet_json(r.ws[1]) || '}' END;
    v_tx_id := (r.t).id;
    o_info := jsonb_build_object('type', (r.t).type, 'status', (r.t).status, 'currency', (r.t).currency,
                                 'amount', pb_fmt(coalesce((r.t).captured_amount, (r.t).amount), (r.t).currency));
  END IF;
  INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, response_body, transaction_id)
  VALUES (p->>'idem_scope', p->>'idem_key', p->>'idem_fingerprint', o_status, o_body, v_tx_id);
END
$$;
