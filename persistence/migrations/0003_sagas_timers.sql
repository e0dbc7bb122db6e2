-- Sagas with their step log, and durable timers.

CREATE TABLE sagas (
  tenant_id       text COLLATE "C" NOT NULL,
  saga_id         text COLLATE "C" NOT NULL,
  type            text COLLATE "C" NOT NULL,
  subscription_id text COLLATE "C" NOT NULL,
  status          text COLLATE "C" NOT NULL CHECK (status IN
                    ('running', 'waiting', 'compensating',
                     'completed', 'compensated', 'failed')),
  step            integer NOT NULL,
  version         bigint NOT NULL CHECK (version >= 1),
  data_json       text NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, saga_id)
);
CREATE INDEX sagas_by_created ON sagas (tenant_id, created_at, saga_id);
-- Recovery scans only what is unfinished, across tenants.
CREATE INDEX sagas_unfinished ON sagas (tenant_id, saga_id)
  WHERE status IN ('running', 'waiting', 'compensating');

-- Append-only; seq is 1, 2, … per saga, assigned by the store. A step of a
-- saga that does not exist is refused.
CREATE TABLE saga_steps (
  tenant_id text COLLATE "C" NOT NULL,
  saga_id   text COLLATE "C" NOT NULL,
  seq       bigint NOT NULL CHECK (seq >= 1),
  step      integer NOT NULL,
  kind      text NOT NULL CHECK (kind IN ('action', 'compensation')),
  name      text NOT NULL,
  outcome   text NOT NULL,
  detail    text NOT NULL,
  at        timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, saga_id, seq),
  CONSTRAINT saga_steps_of_a_saga
    FOREIGN KEY (tenant_id, saga_id) REFERENCES sagas (tenant_id, saga_id)
);

-- A completed timer row stays, so that scheduling the same deterministic id
-- again changes nothing; a cancelled one may be scheduled again.
CREATE TABLE timers (
  tenant_id    text COLLATE "C" NOT NULL,
  timer_id     text COLLATE "C" NOT NULL,
  owner        text COLLATE "C" NOT NULL,
  kind         text COLLATE "C" NOT NULL,
  due_at       timestamptz NOT NULL,
  payload_json text NOT NULL,
  state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'completed', 'cancelled')),
  lease_until  timestamptz,
  claimed_by   text,
  PRIMARY KEY (tenant_id, timer_id)
);
CREATE INDEX timers_due ON timers (due_at, tenant_id, timer_id)
  WHERE state = 'pending';
CREATE INDEX timers_by_owner ON timers (tenant_id, owner, kind)
  WHERE state = 'pending';
