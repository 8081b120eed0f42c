DROP TABLE IF EXISTS ledger_entries;
DROP FUNCTION IF EXISTS ledger_entries_append_only();
DROP TABLE IF EXISTS transactions;
DROP FUNCTION IF EXISTS pb_uuid7();
