-- Privileges for the least-privilege role `serve` and `relay` can run as. The role itself is
-- created by the operator (it carries a password or IAM mapping), so this is a no-op when it
-- does not exist; create the role and run `paybridge migrate force 4 && paybridge migrate up`
-- (or grant by hand) if it is added later. Default privileges cover tables that later
-- migrations create, as long as the same user runs the migrations.
DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paybridge_runtime') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO paybridge_runtime', s);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO paybridge_runtime', s);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO paybridge_runtime', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO paybridge_runtime', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO paybridge_runtime', s);
  END IF;
END
$grants$;
