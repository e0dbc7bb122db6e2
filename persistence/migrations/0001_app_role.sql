-- The role the service connects as. Row-level security binds it because it is
-- not a superuser, has no BYPASSRLS and owns no table (the migration user owns
-- them, and the tables are not FORCEd, so only the owner's own code -- the
-- SECURITY DEFINER functions of 0007 -- sees across tenants).
-- Roles are cluster-wide: another database of the same cluster may be
-- migrating at the same moment, hence the tolerated duplicate.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recur_app') THEN
    BEGIN
      CREATE ROLE recur_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  -- A pre-existing role that could escape row-level security is refused
  -- rather than silently trusted.
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
             WHERE rolname = 'recur_app' AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'role recur_app must be NOSUPERUSER NOBYPASSRLS';
  END IF;
END
$$;
