DROP FUNCTION pb_post_http_batch(jsonb);
