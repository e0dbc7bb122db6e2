-- pgbench's side of the comparison: one durable single-row INSERT per
-- transaction, a row shaped like a subscription event (see store_bench.sh).
INSERT INTO pgbench_events (subscription_id, type, payload_json, recorded_at)
VALUES ('sub_' || :client_id, 'subscription.renewed', '{"bench": true}', now());
