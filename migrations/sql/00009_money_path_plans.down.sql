ALTER FUNCTION pb_idem_claim(jsonb) RESET enable_seqscan;
