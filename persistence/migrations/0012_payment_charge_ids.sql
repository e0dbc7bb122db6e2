-- The gateway's charge id on payment attempts, so that gateway events that
-- carry only the charge id (disputes; refunds made in the gateway's
-- dashboard) find their payment, invoice and subscription.

-- '' until an outcome names the charge. Not unique: a sandbox gateway that
-- restarts counts its ids again; a look-up takes the latest attempt.
ALTER TABLE payment_attempts
  ADD COLUMN charge_id text COLLATE "C" NOT NULL DEFAULT '';

CREATE INDEX payment_attempts_by_charge
  ON payment_attempts (tenant_id, charge_id, updated_at DESC)
  WHERE charge_id <> '';
