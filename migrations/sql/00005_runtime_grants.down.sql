DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paybridge_runtime') THEN
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM paybridge_runtime', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM paybridge_runtime', s);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM paybridge_runtime', s);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM paybridge_runtime', s);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM paybridge_runtime', s);
  END IF;
END
$grants$;
