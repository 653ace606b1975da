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
    min_amount_minor BIGINT  NOT NULL CHECK (min_amount_minor >= 0),
    declines_only    BIGINT  NOT NULL CHECK (declines_only IN (0, 1)),
    webhook_url      TEXT,
    email            TEXT,
    phone            TEXT,
    -- The webhook's signing secret is derived in the HSM from `target` and this nonce.
    secret_nonce     TEXT    NOT NULL,
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE alert_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target          TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('webhook', 'email', 'sms')),
    payload         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    retry_until     BIGINT  NOT NULL,
    last_status     BIGINT ,
    last_error      TEXT,
    delivered_at    BIGINT ,
    UNIQUE (target, event_id, channel)
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_of_target ON alert_deliveries (target, id);
