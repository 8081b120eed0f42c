-- Runs between 00006's down and 00006's up (see 00008_money_path_leaner.ts): 00006's down has
-- dropped the money path, this drops what 00008 added and restores the 00007 wake-up trigger,
-- then 00006's up recreates the 00006 functions.
DROP FUNCTION IF EXISTS pb_iso(timestamptz);
DROP TYPE IF EXISTS pb_tx_wire;
DROP TYPE IF EXISTS pb_wallet_wire;
DROP TYPE IF EXISTS pb_actor_wire;
DROP FUNCTION IF EXISTS pb_outbox_wake();
ALTER TABLE idempotency_keys ALTER COLUMN scope TYPE text COLLATE "default", ALTER COLUMN key TYPE text COLLATE "default";
ALTER TABLE outbox ALTER COLUMN aggregate_type TYPE text COLLATE "default";

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- key (0x50425258 'PBRX', 7): two-int advisory key space, distinct from the migrator's bigint lock
  IF EXISTS (SELECT 1 FROM outbox_listeners WHERE waiting_until > now())
     AND pg_try_advisory_xact_lock(1346523736, 7) THEN
    PERFORM pg_notify('paybridge_outbox', '');
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
