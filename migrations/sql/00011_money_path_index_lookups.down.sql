DROP INDEX outbox_listeners_waiting_idx;
ALTER FUNCTION pb_post(jsonb) RESET ALL;
ALTER FUNCTION pb_post_http(jsonb) RESET ALL;
ALTER FUNCTION pb_idem_claim(jsonb) SET enable_seqscan = off;
