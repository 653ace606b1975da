-- Idempotency records are kept 24 hours; every new claim deletes a few expired ones, oldest
-- first, which this index finds without a scan.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
