-- A leaner money path: the same behaviour as 00006/00007 for less backend CPU per posting.
-- Each change below removes work PostgreSQL redid on every posting (measured as the backend's
-- CPU per transfer, one session calling pb_post_http in a loop).
--
-- 1. Relay wake-up without a statement trigger. The AFTER INSERT ... FOR EACH STATEMENT
--    trigger of 00007 cost a trigger invocation (a plpgsql call and its own query) on every
--    outbox insert. The same rule now runs as pb_outbox_wake(), called by the two writers of
--    the outbox in the same transaction as their INSERT: pb_emit (the money path) and
--    appendEvents (src/outbox/events.ts). Rule unchanged: notify only while some relay waits,
--    and then from one in-flight transaction at a time.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
CREATE FUNCTION pb_outbox_wake() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  -- key (0x50425258 'PBRX', 7): two-int advisory key space, distinct from the migrator's bigint lock
  IF EXISTS (SELECT 1 FROM outbox_listeners WHERE waiting_until > now())
     AND pg_try_advisory_xact_lock(1346523736, 7) THEN
    PERFORM pg_notify('paybridge_outbox', '');
  END IF;
END
$$;

-- 2. The response and event renderers as row_to_json over "wire" composite types (field order
--    = the JSON key order of src/ledger/render.ts and renderWallet, compact output). One
--    expression node per field instead of a chain of ~45 concatenations: PostgreSQL builds
--    these inlined expressions again in every transaction, so their size is per-posting CPU.
--    Output is byte-for-byte that of 00006 (test/ledger/sql-render.test.ts).
CREATE TYPE pb_actor_wire AS (id text, role text);
CREATE TYPE pb_tx_wire AS (
  id uuid, type text, status text, direction text, wallet_id uuid, destination_wallet_id uuid,
  amount text, captured_amount text, currency text, description text, external_reference text, metadata jsonb,
  failure_reason text, retry_count integer, idempotency_key text, original_transaction_id uuid,
  actor pb_actor_wire, expires_at text, created_at text, updated_at text, processed_at text, completed_at text);
CREATE TYPE pb_wallet_wire AS (
  id uuid, user_id uuid, currency text, kind text, status text, available_balance text, pending_balance text,
  total_balance text, daily_limit text, monthly_limit text, version bigint, created_at text, updated_at text);
-- Date#toISOString without the quotes (row_to_json adds them; NULL stays null).
CREATE FUNCTION pb_iso(v timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT to_char(v AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
CREATE OR REPLACE FUNCTION pb_tx_json(t transactions) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT row_to_json(ROW(t.id, t.type, t.status, t.direction, t.wallet_id, t.destination_wallet_id,
    pb_fmt(t.amount, t.currency), pb_fmt(t.captured_amount, t.currency), t.currency, t.description,
    t.external_reference, t.metadata, t.failure_reason, t.retry_count, t.idempotency_key, t.original_transaction_id,
    ROW(t.actor->>'id', t.actor->>'role')::pb_actor_wire, pb_iso(t.expires_at), pb_iso(t.created_at),
    pb_iso(t.updated_at), pb_iso(t.processed_at), pb_iso(t.completed_at))::pb_tx_wire)::text
$$;
CREATE OR REPLACE FUNCTION pb_wallet_json(w wallets) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT row_to_json(ROW(w.id, w.user_id, w.currency, w.kind, w.status, pb_fmt(w.available_balance, w.currency),
    pb_fmt(w.pending_balance, w.currency), pb_fmt(w.available_balance + w.pending_balance, w.currency),
    pb_fmt(w.daily_limit, w.currency), pb_fmt(w.monthly_limit, w.currency), w.version, pb_iso(w.created_at),
    pb_iso(w.updated_at))::pb_wallet_wire)::text
$$;
-- Only the old renderers used these two.
DROP FUNCTION pb_ts(timestamptz);
DROP FUNCTION pb_jamt(bigint, text);

-- 3. pb_transfer locks and updates its two wallet rows with one plain statement each instead
--    of FOR ... LOOP cursors (a cursor opens a portal and fetches through it). Same lock order
--    (ascending id, one statement), same checks.
CREATE OR REPLACE FUNCTION pb_transfer(p jsonb) RETURNS pb_result LANGUAGE plpgsql AS $$
DECLARE
  v_src_id uuid := (p->>'wallet_id')::uuid;
  v_dst_id uuid := (p->>'destination_wallet_id')::uuid;
  v_amount bigint := (p->>'amount')::bigint;
  v_owner uuid := (p->>'owner_id')::uuid;
  v_err jsonb;
  v_ws wallets[];
  r wallets;
  s wallets;
  d wallets;
  t transactions;
BEGIN
  -- Both rows locked by one statement, in id order.
  SELECT array_agg(x ORDER BY (x).id) INTO v_ws
    FROM (SELECT w AS x FROM wallets w WHERE id IN (v_src_id, v_dst_id) ORDER BY id FOR UPDATE) l;
  FOREACH r IN ARRAY coalesce(v_ws, '{}') LOOP
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

  WITH u AS (UPDATE wallets SET available_balance = available_balance + CASE WHEN id = v_src_id THEN -v_amount ELSE v_amount END,
                                version = version + 1, updated_at = now(), event_seq = event_seq + 1
              WHERE id IN (v_src_id, v_dst_id) RETURNING wallets AS x)
  SELECT array_agg(x) INTO v_ws FROM u;
  FOREACH r IN ARRAY v_ws LOOP
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

-- 4. pb_emit wakes a waiting relay itself (see 1).
CREATE OR REPLACE FUNCTION pb_emit(p jsonb, r pb_result, p_tx jsonb) RETURNS void LANGUAGE plpgsql AS $$
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
    WHEN 'reject' THEN RETURN;
  END CASE;
  PERFORM pb_outbox_wake();
END
$$;

-- 5. Byte-order ("C") collation for the text keys that every posting looks up and inserts:
--    the idempotency primary key (scope, key) and the outbox's aggregate index. Under the
--    database's default collation each btree comparison of two text keys goes through
--    strcoll on NUL-terminated copies; "C" compares bytes. Equality, the only thing these
--    keys are used for, is byte equality under either (deterministic) collation. Rebuilds
--    the two indexes.
ALTER TABLE idempotency_keys ALTER COLUMN scope TYPE text COLLATE "C", ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE outbox ALTER COLUMN aggregate_type TYPE text COLLATE "C";
