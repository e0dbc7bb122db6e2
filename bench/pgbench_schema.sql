-- The table pgbench inserts into: the columns and primary key of
-- subscription_events, without the tenant's row-level security.
DROP TABLE IF EXISTS pgbench_events;
CREATE TABLE pgbench_events (
  subscription_id text COLLATE "C" NOT NULL,
  seq             bigserial NOT NULL,
  type            text NOT NULL,
  payload_json    text NOT NULL,
  recorded_at     timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, seq)
);
