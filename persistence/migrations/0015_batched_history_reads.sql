-- Activations read their histories in batches.
--
-- scoped_load_histories is scoped_load_history (migration 0013) for many
-- subscriptions of one tenant in one statement. pg_store::load_history sends
-- the activations that arrive while earlier reads are in flight together, in
-- the next read: under a burst of activations (a renewal run, a recovery) one
-- statement answers tens of them, where each cost a statement, a transaction
-- and a round trip of its own.
--
-- Each row carries the 1-based position of its subscription in
-- p_subscriptions, so that a subscription named twice is answered twice.
-- Per position: the latest snapshot (kind 0, body = state_json), then the
-- events after it (kind 1, body = payload_json), at most p_limit of them, in
-- seq order. One statement: every history of the batch comes from one
-- snapshot of the database. SECURITY INVOKER, as in 0013: row-level security
-- still filters every row for recur_app.
CREATE FUNCTION scoped_load_histories(p_tenant text, p_subscriptions text[],
                                      p_limit integer)
RETURNS TABLE (pos integer, kind smallint, seq bigint, type text, body text,
               at timestamptz)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY
    SELECT u.o::integer, h.k, h.q, h.t, h.b, h.a
    FROM unnest(p_subscriptions) WITH ORDINALITY AS u(s, o)
    CROSS JOIN LATERAL (
      (SELECT 0::smallint AS k, n.seq AS q, ''::text AS t,
              n.state_json AS b, n.taken_at AS a
       FROM public.snapshots n
       WHERE n.tenant_id = p_tenant AND n.subscription_id = u.s
       ORDER BY n.seq DESC LIMIT 1)
      UNION ALL
      (SELECT 1::smallint, e.seq, e.type, e.payload_json, e.recorded_at
       FROM public.subscription_events e
       WHERE e.tenant_id = p_tenant AND e.subscription_id = u.s
         AND e.seq > coalesce(
           (SELECT max(m.seq) FROM public.snapshots m
            WHERE m.tenant_id = p_tenant AND m.subscription_id = u.s), 0)
       ORDER BY e.seq LIMIT p_limit)) h
    ORDER BY u.o, h.k, h.q;
END $$;

REVOKE ALL ON FUNCTION scoped_load_histories(text, text[], integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scoped_load_histories(text, text[], integer)
TO recur_app;

-- The store reads no single history any more.
DROP FUNCTION scoped_load_history(text, text, integer);
