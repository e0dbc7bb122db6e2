-- Outbox, inbox, HTTP idempotency keys, usage, audit.

-- position: allocated while the writer holds a transaction-scoped advisory
-- lock (see pg_commit.cpp), so positions grow in commit order and a relay
-- that reads "position > last seen" never skips a late committer.
CREATE TABLE outbox (
  tenant_id     text COLLATE "C" NOT NULL,
  position      bigserial NOT NULL,
  message_id    text COLLATE "C" NOT NULL,
  partition_key text NOT NULL,
  type          text NOT NULL,
  subject       text NOT NULL,
  data_json     text NOT NULL,
  occurred_at   timestamptz NOT NULL,
  published_at  timestamptz,
  PRIMARY KEY (tenant_id, position)
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;

CREATE TABLE processed_webhooks (
  tenant_id   text COLLATE "C" NOT NULL,
  gateway     text COLLATE "C" NOT NULL,
  event_id    text COLLATE "C" NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, gateway, event_id)
);

-- response_status is NULL while the request is in flight.
CREATE TABLE idempotency_keys (
  tenant_id          text COLLATE "C" NOT NULL,
  idempotency_key    text COLLATE "C" NOT NULL,
  request_sha256_hex text COLLATE "C" NOT NULL,
  response_status    integer,
  response_body      text,
  created_at         timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, idempotency_key)
);

CREATE TABLE usage_events (
  tenant_id       text COLLATE "C" NOT NULL,
  usage_id        text COLLATE "C" NOT NULL,
  subscription_id text COLLATE "C" NOT NULL,
  meter           text COLLATE "C" NOT NULL,
  quantity        bigint NOT NULL CHECK (quantity >= 0),
  at              timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, usage_id)
);
CREATE INDEX usage_events_by_meter
  ON usage_events (tenant_id, subscription_id, meter, at);

-- Append-only; seq is global (no per-tenant counter to contend on), so a
-- tenant's entries are ordered but not contiguous.
CREATE TABLE audit_log (
  tenant_id   text COLLATE "C" NOT NULL,
  seq         bigserial NOT NULL,
  actor       text NOT NULL,
  action      text NOT NULL,
  subject     text NOT NULL,
  detail_json text NOT NULL,
  at          timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);
