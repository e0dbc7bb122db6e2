-- Per-tenant gateway settings (PUT /v1/gateways/{gateway}): the webhook
-- signing secret the webhook endpoint verifies with, and the gateway's API key
-- and base URL. config_json holds them as one JSON object; the API never
-- echoes the secrets back.
CREATE TABLE gateway_configs (
  tenant_id   text COLLATE "C" NOT NULL,
  gateway     text COLLATE "C" NOT NULL,
  config_json text NOT NULL,
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, gateway)
);

-- The same isolation as every other table (0006).
ALTER TABLE gateway_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE gateway_configs
  ADD CONSTRAINT gateway_configs_tenant_set CHECK (tenant_id <> '');
CREATE POLICY tenant_isolation ON gateway_configs
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON gateway_configs TO recur_app;

-- An HTTP request that reserved an Idempotency-Key and then failed on our
-- side (5xx) gives its reservation back, so that the client's retry with the
-- same key runs instead of answering 409 forever (store::release_idempotent).
-- Only unanswered reservations are ever deleted (see pg_store.cpp).
GRANT DELETE ON idempotency_keys TO recur_app;
