-- Every lookup of the money path stays an index lookup, whatever the planner's statistics say.
--
-- 00009 did this for the idempotency claim alone. The same happens to every other lookup a
-- posting makes, most of all the foreign-key checks PostgreSQL runs for it (each ledger entry
-- and idempotency record looks up its transaction; each transaction and entry its wallets).
-- A pooled connection keeps those plans for its lifetime; planned while a table was small (a
-- fresh deployment) and not analysed since (autovacuum off, or between its runs), a check was
-- a sequential scan of the whole table on every posting: seen as two or three scans of all of
-- transactions per transfer once 20,000 rows had arrived (test/money/plans.test.ts). Every
-- lookup here is by a key, so a sequential scan is never the right plan: the two entry points
-- run with sequential scans off, for the call only, and so does everything they run (the
-- foreign-key checks included).
--
-- JIT off for the same calls: a plan that must still scan sequentially is costed at 10^10 when
-- scans are off, far above jit_above_cost, and PostgreSQL then JIT-compiled that query on every
-- call (16 ms per posting: the "~30 ms" 00009 saw and did not explain). Nothing in a posting
-- is big enough for JIT to pay. The one such query was the relay wake-up's look at
-- outbox_listeners, which now has an index to use.
ALTER FUNCTION pb_idem_claim(jsonb) RESET enable_seqscan;
ALTER FUNCTION pb_post_http(jsonb) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION pb_post(jsonb) SET enable_seqscan = off SET jit = off;
CREATE INDEX outbox_listeners_waiting_idx ON outbox_listeners (waiting_until);
