DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS idempotency_keys;
