-- A schema_triggers.sql as the project would write it (names prefixed
-- fixture_ to stay clear of the real ones): idempotent SQL, run again by
-- every migration that carries it. Tests of the migrator (db.CheckFile,
-- db.Up) and of the schema review carry it in a migration.

-- updated_at follows every change of a row, whatever statement made it.
CREATE OR REPLACE FUNCTION fixture_touch_updated_at() RETURNS trigger AS $$
BEGIN
  IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
    NEW.updated_at := clock_timestamp();
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE TRIGGER apps_fixture_touch
  BEFORE UPDATE ON apps
  FOR EACH ROW EXECUTE FUNCTION fixture_touch_updated_at();

CREATE OR REPLACE TRIGGER builds_fixture_touch
  BEFORE UPDATE ON builds
  FOR EACH ROW EXECUTE FUNCTION fixture_touch_updated_at();

CREATE OR REPLACE TRIGGER deployments_fixture_touch
  BEFORE UPDATE ON deployments
  FOR EACH ROW EXECUTE FUNCTION fixture_touch_updated_at();

-- The tables whose touch trigger is missing; nested blocks, an exception
-- handler and END; inside a tagged body.
CREATE OR REPLACE FUNCTION fixture_missing_touch_triggers() RETURNS text[]
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  missing text[] := '{}';
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['apps', 'builds', 'deployments'] LOOP
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = t::regclass AND tgname = t || '_fixture_touch') THEN
        missing := missing || t;
      END IF;
    EXCEPTION WHEN undefined_table THEN
      missing := missing || t;
    END;
  END LOOP;
  RETURN missing;
END;
$fn$;

DO $$
DECLARE
  missing text[] := fixture_missing_touch_triggers();
BEGIN
  IF cardinality(missing) > 0 THEN
    RAISE EXCEPTION 'fixture_touch triggers missing on %', missing;
  END IF;
END
$$;

-- Repair what was written before the trigger existed.
UPDATE apps SET updated_at = created_at WHERE updated_at < created_at;
