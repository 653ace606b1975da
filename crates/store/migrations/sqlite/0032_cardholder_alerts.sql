-- Cardholder alerts (issue 9, R14): what each card or wallet's holder wants to be told, and an
-- outbox of alerts, one per transaction and channel, retried with backoff until sent or their
-- retry window ends. The alerts are made after the fact from the message journal and the
-- wallet's orders (a cursor in `meta`), so the authorization path writes nothing more.
-- `target` is a directory card id or a wallet id, never a card number.
CREATE TABLE alert_preferences (
    target           TEXT    NOT NULL PRIMARY KEY,
    target_kind      TEXT    NOT NULL CHECK (target_kind IN ('card', 'wallet')),
    cardholder_id    TEXT    NOT NULL,
    -- Comma-separated channel names: webhook, email, sms (empty: no alerts).
    channels         TEXT    NOT NULL,
    min_amount_minor INTEGER NOT NULL CHECK (min_amount_minor >= 0),
    declines_only    INTEGER NOT NULL CHECK (declines_only IN (0, 1)),
    webhook_url      TEXT,
    email            TEXT,
    phone            TEXT,
    -- The webhook's signing secret is derived in the HSM from `target` and this nonce.
    secret_nonce     TEXT    NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY,
    target          TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('webhook', 'email', 'sms')),
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    retry_until     INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    UNIQUE (target, event_id, channel)
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_of_target ON alert_deliveries (target, id);
