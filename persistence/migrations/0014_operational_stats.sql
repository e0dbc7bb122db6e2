-- Cross-tenant figures for /metrics: sagas by (type, status) and pending
-- timers (all, and those due by p_now). SECURITY DEFINER like the other
-- system calls of 0007: they read every tenant's rows, which row-level
-- security would hide from recur_app, and return nothing but counts.

CREATE FUNCTION recur_saga_counts()
RETURNS TABLE (type text, status text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.type, s.status, count(*) FROM public.sagas s
  GROUP BY s.type, s.status
  ORDER BY s.type, s.status;
$$;

CREATE FUNCTION recur_timer_counts(p_now timestamptz)
RETURNS TABLE (pending bigint, due bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT count(*), count(*) FILTER (WHERE t.due_at <= p_now)
  FROM public.timers t
  WHERE t.state = 'pending';
$$;

REVOKE ALL ON FUNCTION recur_saga_counts(), recur_timer_counts(timestamptz)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recur_saga_counts(), recur_timer_counts(timestamptz)
TO recur_app;
