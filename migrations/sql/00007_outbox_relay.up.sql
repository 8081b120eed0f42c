-- Outbox relay support.
--
-- 1. Wake-up notification, only when a relay is waiting for one. A NOTIFY makes its
--    transaction take a database-wide lock at commit (PreCommit_Notify) that serialises every
--    notifying commit, WAL flush included; a trigger that notified on every outbox insert
--    would put one global queue in front of every money transaction. So an idle relay
--    registers here (waiting_until = a short lease it renews while idle) and clears it when
--    it gets busy; the trigger notifies only while some relay is waiting, and then only from
--    one in-flight transaction at a time (the one that wins the advisory lock). Under load the
--    relays are busy, nobody waits, and a money commit pays one tiny index lookup. A wake-up
--    missed in the gap between a relay's last empty batch and its registration is covered by
--    its fallback poll. UNLOGGED: the rows are ephemeral (a crashed relay's lease expires).
--    Measured with scripts/bench-relay.ts; see docs/events.md.
CREATE UNLOGGED TABLE outbox_listeners (
  relay_id       uuid PRIMARY KEY,
  waiting_until  timestamptz NOT NULL
);

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

-- 2. The /events feed pages in (txid, position) order and serves only rows whose txid is
--    below the oldest in-flight transaction, so a late commit can never land behind a cursor.
CREATE INDEX outbox_feed_idx ON outbox (txid, position);
