-- Tenant isolation: on every table, a session sees and writes only the rows of
-- the tenant it set with set_config('app.tenant_id', …, true). A session that
-- set nothing sees nothing (current_setting(…, true) is NULL). The policy
-- applies to every role but the owner (tables are not FORCEd: the owner's
-- SECURITY DEFINER functions of 0007 are the only cross-tenant path).
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY[
    'tenants', 'customers', 'plans', 'subscription_events', 'snapshots',
    'subscriptions', 'sagas', 'saga_steps', 'timers', 'outbox',
    'processed_webhooks', 'idempotency_keys', 'usage_events', 'audit_log',
    'invoices', 'payment_attempts', 'ledger_entries'
  ] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    -- Once a session has set app.tenant_id, its value outside the setting
    -- transaction is '' (not NULL): no row may belong to that "tenant".
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (tenant_id <> %L)',
                   t, t || '_tenant_set', '');
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I'
      ' USING (tenant_id = current_setting(''app.tenant_id'', true))'
      ' WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
  END LOOP;
END
$$;

-- Only the DML the service needs. Append-only tables get no UPDATE, and no
-- table gets DELETE: nothing in the store port deletes.
GRANT SELECT ON tenants TO recur_app;
GRANT SELECT, INSERT, UPDATE ON customers, subscriptions, sagas, timers,
  idempotency_keys, invoices, payment_attempts TO recur_app;
GRANT SELECT, INSERT ON plans, subscription_events, snapshots, saga_steps,
  outbox, processed_webhooks, usage_events, audit_log, ledger_entries
  TO recur_app;
GRANT USAGE ON SEQUENCE outbox_position_seq, audit_log_seq_seq,
  ledger_entries_entry_seq_seq TO recur_app;
