DROP TABLE IF EXISTS ledger_entries;
DROP FUNCTION IF EXISTS ledger_entries_append_only();
DROP TABLE IF EXISTS transactions;
