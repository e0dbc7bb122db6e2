-- Invoices, payment attempts and the double-entry ledger.

CREATE TABLE invoices (
  tenant_id         text COLLATE "C" NOT NULL,
  invoice_id        text COLLATE "C" NOT NULL,
  subscription_id   text COLLATE "C" NOT NULL,
  idempotency_key   text COLLATE "C" NOT NULL,
  status            text NOT NULL,
  currency          text NOT NULL,
  total_minor       bigint NOT NULL,
  amount_due_minor  bigint NOT NULL,
  amount_paid_minor bigint NOT NULL,
  period_start      timestamptz NOT NULL,
  period_end        timestamptz NOT NULL,
  lines_json        text NOT NULL,
  version           bigint NOT NULL CHECK (version >= 1),
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, invoice_id),
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX invoices_by_subscription
  ON invoices (tenant_id, subscription_id, invoice_id);

CREATE TABLE payment_attempts (
  tenant_id       text COLLATE "C" NOT NULL,
  attempt_id      text COLLATE "C" NOT NULL,
  invoice_id      text COLLATE "C" NOT NULL,
  idempotency_key text COLLATE "C" NOT NULL,
  attempt_no      integer NOT NULL,
  status          text NOT NULL,
  amount_minor    bigint NOT NULL,
  currency        text NOT NULL,
  decline_code    text NOT NULL,
  version         bigint NOT NULL CHECK (version >= 1),
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, attempt_id),
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX payment_attempts_by_invoice
  ON payment_attempts (tenant_id, invoice_id, attempt_no, attempt_id);

-- Insert-only for the app role (see 0006). entry_seq keeps append order.
CREATE TABLE ledger_entries (
  tenant_id      text COLLATE "C" NOT NULL,
  transaction_id text COLLATE "C" NOT NULL,
  entry_seq      bigserial NOT NULL,
  line           integer NOT NULL CHECK (line >= 1),
  account        text COLLATE "C" NOT NULL,
  side           text NOT NULL CHECK (side IN ('debit', 'credit')),
  amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
  currency       text COLLATE "C" NOT NULL,
  memo           text NOT NULL,
  subject        text COLLATE "C" NOT NULL,
  at             timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, transaction_id, line)
);
CREATE INDEX ledger_entries_by_subject
  ON ledger_entries (tenant_id, subject, entry_seq);

-- Checked at commit, for every writer and every path (raw SQL included): the
-- transaction a new row belongs to must balance per currency. SECURITY DEFINER
-- because one database transaction may carry several tenants' units (group
-- commit) and, at commit, app.tenant_id names only the last of them.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM public.ledger_entries e
    WHERE e.tenant_id = NEW.tenant_id AND e.transaction_id = NEW.transaction_id
    GROUP BY e.currency
    HAVING sum(CASE e.side WHEN 'debit' THEN e.amount_minor
                           ELSE -e.amount_minor END) <> 0
  ) THEN
    RAISE EXCEPTION 'ledger transaction % of tenant % does not balance',
      NEW.transaction_id, NEW.tenant_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ledger_check_balanced() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced
  AFTER INSERT ON ledger_entries
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
