-- Webhooks (issue 7): subscriptions of a tenant's integrator to its events, and one delivery
-- per event and subscription, retried with backoff until delivered or its retry window ends.
-- A subscription's signing secret is not stored: the HSM derives it from the platform's
-- webhook key, the subscription id and `secret_nonce`.
CREATE TABLE webhook_subscriptions (
    id            TEXT    NOT NULL PRIMARY KEY,
    owner_user_id TEXT    NOT NULL REFERENCES users (id),
    url           TEXT    NOT NULL,
    secret_nonce  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id TEXT    NOT NULL REFERENCES webhook_subscriptions (id),
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    retry_until     INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    UNIQUE (subscription_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
