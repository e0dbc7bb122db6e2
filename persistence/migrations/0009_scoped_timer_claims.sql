-- Timer claims restricted to one tenant, or to tenants not in test mode
-- (store::claim_due_timers_in): a test-mode tenant's timers fire only when
-- its test clock is advanced, never by the wall-clock timer service. The
-- same leasing as recur_claim_due_timers (0007); p_tenant '' means any.

CREATE FUNCTION recur_claim_scoped_timers(
  p_tenant text, p_skip_test boolean, p_now timestamptz, p_limit integer,
  p_lease_s bigint, p_claimer text)
RETURNS TABLE (tenant_id text, timer_id text, owner text, kind text,
               due_at timestamptz, payload_json text, lease_until timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH due AS (
    SELECT t.tenant_id, t.timer_id FROM public.timers t
    WHERE t.state = 'pending' AND t.due_at <= p_now
      AND (t.lease_until IS NULL OR t.lease_until <= p_now)
      AND (p_tenant = '' OR t.tenant_id = p_tenant)
      AND (NOT p_skip_test OR NOT EXISTS (
             SELECT 1 FROM public.tenants x
             WHERE x.tenant_id = t.tenant_id AND x.test_mode))
    ORDER BY t.due_at, t.tenant_id, t.timer_id
    LIMIT least(p_limit, 10000)
    FOR UPDATE OF t SKIP LOCKED
  ), leased AS (
    UPDATE public.timers t
    SET lease_until = p_now + make_interval(secs => p_lease_s),
        claimed_by = p_claimer
    FROM due
    WHERE t.tenant_id = due.tenant_id AND t.timer_id = due.timer_id
    RETURNING t.tenant_id, t.timer_id, t.owner, t.kind, t.due_at,
              t.payload_json, t.lease_until
  )
  SELECT * FROM leased l ORDER BY l.due_at, l.tenant_id, l.timer_id;
$$;

REVOKE ALL ON FUNCTION
  recur_claim_scoped_timers(text, boolean, timestamptz, integer, bigint, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  recur_claim_scoped_timers(text, boolean, timestamptz, integer, bigint, text)
TO recur_app;
