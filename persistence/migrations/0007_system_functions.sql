-- The store port's cross-tenant ("system") calls. Each is a narrow SECURITY
-- DEFINER function owned by the migration user (the table owner, whom
-- row-level security does not bind), with search_path pinned so that no
-- caller-created object can stand in for a catalogue one.

CREATE FUNCTION recur_create_tenant(
  p_tenant_id text, p_name text, p_api_key_sha256_hex text,
  p_test_mode boolean, p_created_at timestamptz)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO public.tenants
    (tenant_id, name, api_key_sha256_hex, test_mode, created_at)
  VALUES (p_tenant_id, p_name, p_api_key_sha256_hex, p_test_mode, p_created_at);
$$;

CREATE FUNCTION recur_find_tenant_by_key_hash(p_api_key_sha256_hex text)
RETURNS SETOF public.tenants
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM public.tenants t
  WHERE t.api_key_sha256_hex = p_api_key_sha256_hex
    AND p_api_key_sha256_hex <> ''
  LIMIT 1;
$$;

-- Unfinished sagas after the cursor (p_after_tenant, p_after_saga), ordered
-- by (tenant, saga id); p_from_start ignores the cursor.
CREATE FUNCTION recur_find_unfinished_sagas(
  p_from_start boolean, p_after_tenant text, p_after_saga text,
  p_limit integer)
RETURNS SETOF public.sagas
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM public.sagas s
  WHERE s.status IN ('running', 'waiting', 'compensating')
    AND (p_from_start
         OR (s.tenant_id, s.saga_id)
            > (p_after_tenant COLLATE "C", p_after_saga COLLATE "C"))
  ORDER BY s.tenant_id, s.saga_id
  LIMIT least(p_limit, 10000);
$$;

-- Leases due, pending, unleased (or lease-expired) timers; concurrent
-- claimers skip each other's locked rows instead of waiting.
CREATE FUNCTION recur_claim_due_timers(
  p_now timestamptz, p_limit integer, p_lease_s bigint, p_claimer text)
RETURNS TABLE (tenant_id text, timer_id text, owner text, kind text,
               due_at timestamptz, payload_json text, lease_until timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH due AS (
    SELECT t.tenant_id, t.timer_id FROM public.timers t
    WHERE t.state = 'pending' AND t.due_at <= p_now
      AND (t.lease_until IS NULL OR t.lease_until <= p_now)
    ORDER BY t.due_at, t.tenant_id, t.timer_id
    LIMIT least(p_limit, 10000)
    FOR UPDATE SKIP LOCKED
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

CREATE FUNCTION recur_fetch_unpublished(p_after bigint, p_limit integer)
RETURNS SETOF public.outbox
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM public.outbox o
  WHERE o.published_at IS NULL AND o.position > p_after
  ORDER BY o.position
  LIMIT least(p_limit, 10000);
$$;

CREATE FUNCTION recur_mark_published(p_positions bigint[], p_at timestamptz)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH marked AS (
    UPDATE public.outbox o SET published_at = p_at
    WHERE o.position = ANY (p_positions) AND o.published_at IS NULL
    RETURNING 1
  )
  SELECT count(*) FROM marked;
$$;

REVOKE ALL ON FUNCTION
  recur_create_tenant(text, text, text, boolean, timestamptz),
  recur_find_tenant_by_key_hash(text),
  recur_find_unfinished_sagas(boolean, text, text, integer),
  recur_claim_due_timers(timestamptz, integer, bigint, text),
  recur_fetch_unpublished(bigint, integer),
  recur_mark_published(bigint[], timestamptz)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  recur_create_tenant(text, text, text, boolean, timestamptz),
  recur_find_tenant_by_key_hash(text),
  recur_find_unfinished_sagas(boolean, text, text, integer),
  recur_claim_due_timers(timestamptz, integer, bigint, text),
  recur_fetch_unpublished(bigint, integer),
  recur_mark_published(bigint[], timestamptz)
TO recur_app;
