-- The write path at volume: timer claims that do not walk leased timers, and
-- a ledger balance check once per statement for the store's batches.

-- == timers ===================================================================
--
-- Claims walk timers in the order they become claimable: a timer never
-- leased at its due time, a leased one at the end of its lease (greatest()
-- ignores a NULL lease; a lease always ends after the due time). The old
-- claims scanned timers_due from the oldest due timer and skipped every
-- pending timer merely leased to someone, so each claim cost O(timers in
-- flight) -- 2-4 ms a call with thousands in flight. Indexed by availability,
-- a claim starts at the first claimable timer and reads only what it takes
-- (the memory store's index does the same).
--
-- A claim moves the row in this index (non-HOT update), which the old scheme
-- avoided; one index write per claimed timer is far cheaper than walking all
-- leased ones on every claim.
CREATE INDEX timers_available
  ON timers ((greatest(due_at, lease_until)), tenant_id, timer_id)
  WHERE state = 'pending';

-- Both claim functions below order by availability; nothing reads timers_due
-- any more, and every timer write would keep paying for it.
DROP INDEX timers_due;

-- Same signature, result and grants as in 0007 (CREATE OR REPLACE keeps the
-- owner, SECURITY DEFINER and the EXECUTE grant); only the order changes:
-- claimable-since first, which for timers never leased is oldest due first.
CREATE OR REPLACE FUNCTION recur_claim_due_timers(
  p_now timestamptz, p_limit integer, p_lease_s bigint, p_claimer text)
RETURNS TABLE (tenant_id text, timer_id text, owner text, kind text,
               due_at timestamptz, payload_json text, lease_until timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH due AS (
    SELECT t.tenant_id, t.timer_id,
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
    FROM due
    WHERE t.tenant_id = due.tenant_id AND t.timer_id = due.timer_id
    RETURNING t.tenant_id, t.timer_id, t.owner, t.kind, t.due_at,
              t.payload_json, t.lease_until, due.available_at
  )
  SELECT l.tenant_id, l.timer_id, l.owner, l.kind, l.due_at, l.payload_json,
         l.lease_until
  FROM leased l ORDER BY l.available_at, l.tenant_id, l.timer_id;
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
    SELECT t.tenant_id, t.timer_id,
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
    FROM due
    WHERE t.tenant_id = due.tenant_id AND t.timer_id = due.timer_id
    RETURNING t.tenant_id, t.timer_id, t.owner, t.kind, t.due_at,
              t.payload_json, t.lease_until, due.available_at
  )
  SELECT l.tenant_id, l.timer_id, l.owner, l.kind, l.due_at, l.payload_json,
         l.lease_until
  FROM leased l ORDER BY l.available_at, l.tenant_id, l.timer_id;
$$;

REVOKE ALL ON FUNCTION
  recur_claim_scoped_timers(text, boolean, timestamptz, integer, bigint, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  recur_claim_scoped_timers(text, boolean, timestamptz, integer, bigint, text)
TO recur_app;

-- == ledger ===================================================================
--
-- 0005 checks at commit, once per inserted line: a plpgsql call and a query
-- per line, about a tenth of the database's work in the renewal benchmark.
-- The store writes every line of a ledger transaction in one statement, so it
-- can have them checked once per statement instead: one primary-key probe
-- per ledger transaction the statement wrote. It asks for that per database transaction with
-- set_config('recur.ledger_check', 'statement', true). Every other writer,
-- raw SQL included, keeps the deferred per-line check, which lets a ledger
-- transaction's lines arrive in several statements.
--
-- Either way each ledger transaction is checked after its last line arrived
-- (a statement's check sees every line stored so far, and every later
-- statement that adds a line is checked again), so a session that sets the
-- flag only gets the stricter check, never a weaker one. Nothing updates or
-- deletes ledger lines (the app role may not).
CREATE FUNCTION ledger_check_balanced_per_statement() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bad_tenant text;
  bad_transaction text;
BEGIN
  -- One primary-key probe per ledger transaction of the statement (the
  -- aggregate keeps EXISTS a correlated subquery). EXECUTE plans it afresh
  -- each time: a plan cached by plpgsql is made once per session, and one
  -- made while the table was nearly empty probes by tenant alone and filters
  -- the rest -- O(table) per ledger transaction once the table has grown.
  EXECUTE $q$
    SELECT n.tenant_id, n.transaction_id
    FROM (SELECT DISTINCT a.tenant_id, a.transaction_id FROM appended a) n
    WHERE EXISTS (
      SELECT 1 FROM public.ledger_entries e
      WHERE e.tenant_id = n.tenant_id AND e.transaction_id = n.transaction_id
      GROUP BY e.currency
      HAVING sum(CASE e.side WHEN 'debit' THEN e.amount_minor
                             ELSE -e.amount_minor END) <> 0)
    LIMIT 1
  $q$ INTO bad_tenant, bad_transaction;
  IF bad_transaction IS NOT NULL THEN
    RAISE EXCEPTION 'ledger transaction % of tenant % does not balance',
      bad_transaction, bad_tenant
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ledger_check_balanced_per_statement() FROM PUBLIC;

CREATE TRIGGER ledger_entries_balanced_per_statement
  AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS appended
  FOR EACH STATEMENT
  WHEN (current_setting('recur.ledger_check', true) = 'statement')
  EXECUTE FUNCTION ledger_check_balanced_per_statement();

-- The per-line check of 0005, now only for rows the statement check does not
-- cover. (A constraint trigger's WHEN is evaluated when the row is inserted,
-- not at commit.)
DROP TRIGGER ledger_entries_balanced ON ledger_entries;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced
  AFTER INSERT ON ledger_entries
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW
  WHEN (current_setting('recur.ledger_check', true)
        IS DISTINCT FROM 'statement')
  EXECUTE FUNCTION ledger_check_balanced();
