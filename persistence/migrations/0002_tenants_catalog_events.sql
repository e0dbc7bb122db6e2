-- Tenants, the catalogue, and the subscription event store with its snapshots
-- and read model. Keys are COLLATE "C" so that every ordering (cursors,
-- recovery scans) is byte order, the same in any cluster and in memory.

CREATE TABLE tenants (
  tenant_id          text COLLATE "C" NOT NULL,
  name               text NOT NULL,
  api_key_sha256_hex text COLLATE "C" NOT NULL,
  test_mode          boolean NOT NULL DEFAULT false,
  created_at         timestamptz NOT NULL,
  PRIMARY KEY (tenant_id)
);
-- Authentication looks a tenant up by its key hash before it knows the tenant.
CREATE UNIQUE INDEX tenants_api_key ON tenants (api_key_sha256_hex)
  WHERE api_key_sha256_hex <> '';

CREATE TABLE customers (
  tenant_id   text COLLATE "C" NOT NULL,
  customer_id text COLLATE "C" NOT NULL,
  data_json   text NOT NULL,
  version     bigint NOT NULL CHECK (version >= 1),
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, customer_id)
);

-- Plan versions: immutable once written (the app role may not UPDATE them).
CREATE TABLE plans (
  tenant_id    text COLLATE "C" NOT NULL,
  plan_id      text COLLATE "C" NOT NULL,
  version      integer NOT NULL CHECK (version >= 1),
  effective_at timestamptz NOT NULL,
  data_json    text NOT NULL,
  PRIMARY KEY (tenant_id, plan_id, version)
);

-- Append-only. The primary key makes a concurrent append of the same seq lose.
CREATE TABLE subscription_events (
  tenant_id       text COLLATE "C" NOT NULL,
  subscription_id text COLLATE "C" NOT NULL,
  seq             bigint NOT NULL CHECK (seq >= 1),
  type            text NOT NULL,
  payload_json    text NOT NULL,
  recorded_at     timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, subscription_id, seq)
);

-- Contiguity: an event after the first must follow one that exists, so an
-- append whose expected version is ahead of the stream fails too, whoever
-- sends it. One check per statement over its new rows (a foreign key on
-- seq - 1 would run a query and lock the previous row for every event); the
-- LATERAL ... LIMIT 1 makes it one primary-key probe per new row, never a scan
-- of the table. It reports foreign_key_violation, which is what a broken
-- chain is.
CREATE FUNCTION subscription_events_follow() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  gap record;
BEGIN
  SELECT n.subscription_id, n.seq INTO gap
  FROM appended n
  LEFT JOIN LATERAL (
    SELECT true AS found FROM public.subscription_events e
    WHERE e.tenant_id = n.tenant_id
      AND e.subscription_id = n.subscription_id
      AND e.seq = n.seq - 1
    LIMIT 1) prev ON true
  WHERE n.seq > 1 AND prev.found IS NULL
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'event % of subscription % does not follow its stream',
      gap.seq, gap.subscription_id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER subscription_events_contiguous
  AFTER INSERT ON subscription_events
  REFERENCING NEW TABLE AS appended
  FOR EACH STATEMENT EXECUTE FUNCTION subscription_events_follow();

-- A snapshot is the state after an event that exists.
CREATE TABLE snapshots (
  tenant_id       text COLLATE "C" NOT NULL,
  subscription_id text COLLATE "C" NOT NULL,
  seq             bigint NOT NULL CHECK (seq >= 1),
  state_json      text NOT NULL,
  taken_at        timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, subscription_id, seq),
  CONSTRAINT snapshots_of_an_event
    FOREIGN KEY (tenant_id, subscription_id, seq)
    REFERENCES subscription_events (tenant_id, subscription_id, seq)
);

-- The query side of subscriptions, written in the unit of work of its events.
CREATE TABLE subscriptions (
  tenant_id       text COLLATE "C" NOT NULL,
  subscription_id text COLLATE "C" NOT NULL,
  customer_id     text COLLATE "C" NOT NULL,
  plan_id         text COLLATE "C" NOT NULL,
  status          text COLLATE "C" NOT NULL,
  version         bigint NOT NULL,
  data_json       text NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, subscription_id)
);
CREATE INDEX subscriptions_by_status
  ON subscriptions (tenant_id, status, subscription_id);
CREATE INDEX subscriptions_by_customer
  ON subscriptions (tenant_id, customer_id, subscription_id);
