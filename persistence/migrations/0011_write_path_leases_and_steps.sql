-- The write path at volume, second part: timer leases written by row address,
-- and saga steps checked against their saga without locking it per step.

-- == timers ===================================================================
--
-- Same signature, result, grants and order as in 0010 (CREATE OR REPLACE
-- keeps the owner, SECURITY DEFINER and the EXECUTE grant). Only the lease
-- is written by row address: the rows are locked by this very statement
-- (FOR UPDATE), so their ctid cannot move, and a TID scan touches
-- only them. The join by key it replaces was planned once per call with the
-- limit unknown, and the planner hashed the whole timers table for it: 100 ms
-- a claim at 200,000 timers, O(table).
CREATE OR REPLACE FUNCTION recur_claim_due_timers(
  p_now timestamptz, p_limit integer, p_lease_s bigint, p_claimer text)
RETURNS TABLE (tenant_id text, timer_id text, owner text, kind text,
               due_at timestamptz, payload_json text, lease_until timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH due AS (
    SELECT t.ctid AS row_id, t.tenant_id, t.timer_id,
           greatest(t.due_at, t.lease_until) AS available_at
    FROM public.timers t
    WHERE t.state = 'pending' AND greatest(t.due_at, t.lease_until) <= p_now
    ORDER BY greatest(t.due_at, t.lease_until), t.tenant_id, t.timer_id
    LIMIT least(p_limit, 10000)
    FOR UPDATE OF t SKIP LOCKED
  ), leased AS (
    UPDATE public.timers t
    SET lease_until = p_now + make_interval(secs => p_lease_s),
        claimed_by = p_claimer
    WHERE t.ctid = ANY (ARRAY(SELECT d.row_id FROM due d))
    RETURNING t.tenant_id, t.timer_id, t.owner, t.kind, t.due_at,
              t.payload_json, t.lease_until
  )
  SELECT l.tenant_id, l.timer_id, l.owner, l.kind, l.due_at, l.payload_json,
         l.lease_until
  FROM leased l
  JOIN due d ON d.tenant_id = l.tenant_id AND d.timer_id = l.timer_id
  ORDER BY d.available_at, l.tenant_id, l.timer_id;
$$;

-- The scoped claims of 0009 (test clocks; the wall-clock service skipping
-- test-mode tenants) get the same order and the same index.
CREATE OR REPLACE FUNCTION recur_claim_scoped_timers(
  p_tenant text, p_skip_test boolean, p_now timestamptz, p_limit integer,
  p_lease_s bigint, p_claimer text)
RETURNS TABLE (tenant_id text, timer_id text, owner text, kind text,
               due_at timestamptz, payload_json text, lease_until timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH due AS (
    SELECT t.ctid AS row_id, t.tenant_id, t.timer_id,
           greatest(t.due_at, t.lease_until) AS available_at
    FROM public.timers t
    WHERE t.state = 'pending' AND greatest(t.due_at, t.lease_until) <= p_now
      AND (p_tenant = '' OR t.tenant_id = p_tenant)
      AND (NOT p_skip_test OR NOT EXISTS (
             SELECT 1 FROM public.tenants x
             WHERE x.tenant_id = t.tenant_id AND x.test_mode))
    ORDER BY greatest(t.due_at, t.lease_until), t.tenant_id, t.timer_id
    LIMIT least(p_limit, 10000)
    FOR UPDATE OF t SKIP LOCKED
  ), leased AS (
    UPDATE public.timers t
    SET lease_until = p_now + make_interval(secs => p_lease_s),
        claimed_by = p_claimer
    WHERE t.ctid = ANY (ARRAY(SELECT d.row_id FROM due d))
    RETURNING t.tenant_id, t.timer_id, t.owner, t.kind, t.due_at,
              t.payload_json, t.lease_until
  )
  SELECT l.tenant_id, l.timer_id, l.owner, l.kind, l.due_at, l.payload_json,
         l.lease_until
  FROM leased l
  JOIN due d ON d.tenant_id = l.tenant_id AND d.timer_id = l.timer_id
  ORDER BY d.available_at, l.tenant_id, l.timer_id;
$$;


-- == saga steps ===============================================================
--
-- The foreign key of 0003 locked the saga row (FOR KEY SHARE: a tuple write
-- and a WAL record) for every step inserted: 23 µs a step at 100,000 sagas,
-- about a sixth of the database's work in the renewal benchmark. A check at
-- the end of each statement refuses the same steps (any writer, raw SQL
-- included, with the same SQLSTATE) with one primary-key probe per saga the
-- statement touched and no locks. What the lock guarded against, the saga
-- going away or changing its key, is refused on the sagas side instead: a
-- saga with steps cannot be deleted or re-keyed. Unlike the foreign key this
-- does not catch a delete racing a step that is not committed yet; nothing in
-- the service deletes sagas or changes their keys, and the app role may not
-- delete at all.
ALTER TABLE saga_steps DROP CONSTRAINT saga_steps_of_a_saga;

CREATE FUNCTION saga_steps_check_saga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  missing_tenant text;
  missing_saga text;
BEGIN
  -- OFFSET 0 keeps NOT EXISTS a per-saga probe (the planner may not turn it
  -- into an anti-join over the whole sagas table); EXECUTE plans it afresh
  -- each time (see ledger_check_balanced_per_statement).
  EXECUTE $q$
    SELECT n.tenant_id, n.saga_id
    FROM (SELECT DISTINCT a.tenant_id, a.saga_id FROM appended a) n
    WHERE NOT EXISTS (
      SELECT 1 FROM public.sagas s
      WHERE s.tenant_id = n.tenant_id AND s.saga_id = n.saga_id
      OFFSET 0)
    LIMIT 1
  $q$ INTO missing_tenant, missing_saga;
  IF missing_saga IS NOT NULL THEN
    RAISE EXCEPTION 'saga % of tenant % does not exist', missing_saga,
      missing_tenant
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION saga_steps_check_saga() FROM PUBLIC;

CREATE TRIGGER saga_steps_of_a_saga
  AFTER INSERT ON saga_steps
  REFERENCING NEW TABLE AS appended
  FOR EACH STATEMENT EXECUTE FUNCTION saga_steps_check_saga();

CREATE FUNCTION sagas_keep_their_steps() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM public.saga_steps x
             WHERE x.tenant_id = OLD.tenant_id AND x.saga_id = OLD.saga_id) THEN
    RAISE EXCEPTION 'saga % of tenant % has steps', OLD.saga_id,
      OLD.tenant_id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION sagas_keep_their_steps() FROM PUBLIC;

-- AFTER, as the foreign key's own checks were: row-level security refuses a
-- tenant's attempt to move its rows first, with its own SQLSTATE.
CREATE TRIGGER sagas_keep_their_steps_on_delete
  AFTER DELETE ON sagas
  FOR EACH ROW EXECUTE FUNCTION sagas_keep_their_steps();
CREATE TRIGGER sagas_keep_their_steps_on_rekey
  AFTER UPDATE OF tenant_id, saga_id ON sagas
  FOR EACH ROW
  WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id
        OR OLD.saga_id IS DISTINCT FROM NEW.saga_id)
  EXECUTE FUNCTION sagas_keep_their_steps();
