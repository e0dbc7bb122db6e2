-- The read path in one round trip, and room for updates in place.
--
-- Tenant-scoped reads in one round trip. A read in a transaction costs three
-- (BEGIN + set_config, the SELECT, COMMIT); each function below sets
-- app.tenant_id itself and returns the rows, so the store calls it in
-- autocommit: one statement, whose implicit transaction ends the setting.
--
-- SECURITY INVOKER (the default, spelt out): the body runs as the caller,
-- recur_app, whom row-level security binds, so the tenant_isolation policies
-- still filter every row; the functions grant nothing recur_app could not do
-- with set_config and a SELECT. The explicit tenant_id = p_tenant lets the
-- planner use the primary keys, as in the store's own statements.

CREATE FUNCTION scoped_get_tenant(p_tenant text)
RETURNS SETOF public.tenants
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.tenants r WHERE r.tenant_id = p_tenant;
END $$;

CREATE FUNCTION scoped_get_customer(p_tenant text, p_id text)
RETURNS SETOF public.customers
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.customers r
    WHERE r.tenant_id = p_tenant AND r.customer_id = p_id;
END $$;

CREATE FUNCTION scoped_get_subscription(p_tenant text, p_id text)
RETURNS SETOF public.subscriptions
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.subscriptions r
    WHERE r.tenant_id = p_tenant AND r.subscription_id = p_id;
END $$;

CREATE FUNCTION scoped_get_invoice(p_tenant text, p_id text)
RETURNS SETOF public.invoices
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.invoices r
    WHERE r.tenant_id = p_tenant AND r.invoice_id = p_id;
END $$;

CREATE FUNCTION scoped_get_saga(p_tenant text, p_id text)
RETURNS SETOF public.sagas
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.sagas r
    WHERE r.tenant_id = p_tenant AND r.saga_id = p_id;
END $$;

CREATE FUNCTION scoped_get_attempt(p_tenant text, p_id text)
RETURNS SETOF public.payment_attempts
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.payment_attempts r
    WHERE r.tenant_id = p_tenant AND r.attempt_id = p_id;
END $$;

-- The latest attempt with that gateway charge id (payment_attempts_by_charge,
-- migration 0012), as the store's own statement chose it.
CREATE FUNCTION scoped_find_attempt_by_charge(p_tenant text, p_charge text)
RETURNS SETOF public.payment_attempts
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.payment_attempts r
    WHERE r.tenant_id = p_tenant AND r.charge_id = p_charge
      AND r.charge_id <> ''
    ORDER BY r.updated_at DESC, r.attempt_id DESC LIMIT 1;
END $$;

CREATE FUNCTION scoped_get_gateway_config(p_tenant text, p_gateway text)
RETURNS SETOF public.gateway_configs
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.gateway_configs r
    WHERE r.tenant_id = p_tenant AND r.gateway = p_gateway;
END $$;

-- A subscription's latest snapshot (kind 0, body = state_json) and the
-- events after it (kind 1, body = payload_json), at most p_limit of them, in
-- seq order: one statement, so both come from one snapshot of the database
-- (the store read them in one read-committed transaction before, which did
-- not promise that).
CREATE FUNCTION scoped_load_history(p_tenant text, p_subscription text,
                                    p_limit integer)
RETURNS TABLE (kind smallint, seq bigint, type text, body text,
               at timestamptz)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY
    WITH snap AS (
      SELECT s.seq, s.state_json, s.taken_at FROM public.snapshots s
      WHERE s.tenant_id = p_tenant AND s.subscription_id = p_subscription
      ORDER BY s.seq DESC LIMIT 1)
    SELECT h.k, h.q, h.t, h.b, h.a FROM (
      SELECT 0::smallint AS k, n.seq AS q, ''::text AS t, n.state_json AS b,
             n.taken_at AS a
      FROM snap n
      UNION ALL
      (SELECT 1::smallint, e.seq, e.type, e.payload_json, e.recorded_at
       FROM public.subscription_events e
       WHERE e.tenant_id = p_tenant AND e.subscription_id = p_subscription
         AND e.seq > coalesce((SELECT n.seq FROM snap n), 0)
       ORDER BY e.seq LIMIT p_limit)) h
    ORDER BY h.k, h.q;
END $$;

REVOKE ALL ON FUNCTION
  scoped_get_tenant(text),
  scoped_get_customer(text, text),
  scoped_get_subscription(text, text),
  scoped_get_invoice(text, text),
  scoped_get_saga(text, text),
  scoped_get_attempt(text, text),
  scoped_find_attempt_by_charge(text, text),
  scoped_get_gateway_config(text, text),
  scoped_load_history(text, text, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  scoped_get_tenant(text),
  scoped_get_customer(text, text),
  scoped_get_subscription(text, text),
  scoped_get_invoice(text, text),
  scoped_get_saga(text, text),
  scoped_get_attempt(text, text),
  scoped_find_attempt_by_charge(text, text),
  scoped_get_gateway_config(text, text),
  scoped_load_history(text, text, integer)
TO recur_app;

-- Room for updates in place. Sagas, invoices, payment attempts and the
-- subscriptions read model are each written once and then updated a few
-- times within seconds (a saga's steps, a payment's outcome). At the default
-- fillfactor (100) their pages are full, so every update moves the row to
-- another page and adds an entry to each of the table's indexes; with a
-- fifth of each page kept free, an update that changes no indexed column is
-- a heap-only tuple (HOT): no index writes, less WAL. Applies to pages
-- written from now on.
ALTER TABLE subscriptions SET (fillfactor = 80);
ALTER TABLE sagas SET (fillfactor = 80);
ALTER TABLE invoices SET (fillfactor = 80);
ALTER TABLE payment_attempts SET (fillfactor = 80);
