-- Several HTTP postings in ONE transaction: group commit for the money path.
--
-- Under load most of a posting's database cost is per transaction, not per row: the commit
-- and its WAL flush, the statement set-up, and plpgsql building the evaluation state of every
-- expression it runs once per transaction. When every pool connection is busy, the server
-- (src/ledger/batcher.ts) sends the requests that queued meanwhile as one call of this function
-- instead of one call of pb_post_http each. Measured with pgbench (4 clients, DB only):
-- 828-852 transfers/s one per transaction, 1,253-1,409 four per transaction, 1,405-1,648 eight.
--
-- Each posting keeps its own outcome, response, idempotency record and events exactly as
-- pb_post_http writes them alone; they commit together. Business rejections are results, not
-- errors, so one rejected request does not affect the others. Any error aborts the whole
-- batch with nothing written, and the server then runs each request alone.
--
-- No deadlocks: every wallet the batch names is locked up front by ONE statement in id order,
-- the global order every posting uses, so the postings inside only re-take locks they hold.
-- That is why only transfers and plain credits/debits (their wallets are named in the request)
-- are accepted here; a refund locks its original transaction before its wallet and a hold
-- action finds its wallet through the hold, so those always run alone. Requests with the same
-- idempotency key are never put in one batch by the server; if they were, the second would be
-- a replay of the first (the claim's advisory lock is re-entrant), still one effect.
CREATE FUNCTION pb_post_http_batch(ps jsonb)
RETURNS TABLE (o_index integer, o_kind text, o_status integer, o_body text, o_info jsonb)
LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $$
DECLARE
  p jsonb;
  i integer;
BEGIN
  IF jsonb_typeof(ps) IS DISTINCT FROM 'array' OR EXISTS (
       SELECT 1 FROM jsonb_array_elements(ps) e
        WHERE NOT (e->>'op' = 'transfer' OR (e->>'op' = 'move' AND e->>'original_transaction_id' IS NULL))
           OR e->>'idem_key' IS NULL) THEN
    RAISE EXCEPTION 'pb_post_http_batch: only transfers and plain credits/debits with an idempotency key are batched';
  END IF;
  PERFORM 1 FROM wallets
    WHERE id IN (SELECT (e->>'wallet_id')::uuid FROM jsonb_array_elements(ps) e
                 UNION SELECT (e->>'destination_wallet_id')::uuid FROM jsonb_array_elements(ps) e)
    ORDER BY id FOR UPDATE;
  FOR p, i IN SELECT e, n::integer FROM jsonb_array_elements(ps) WITH ORDINALITY AS a(e, n) ORDER BY n LOOP
    RETURN QUERY SELECT i, h.* FROM pb_post_http(p) h;
  END LOOP;
END
$$;
