-- Store-and-forward of the host's own reversals: when the host answers a terminal 96 because
-- the decision took too long, whatever that message may have posted is reversed by the host,
-- retried until it is acknowledged, across restarts. One row per message to reverse; a row
-- is done when `done_at` is set.
CREATE TABLE pending_reversals (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at       BIGINT  NOT NULL, -- microseconds since the epoch
    terminal_id      TEXT    NOT NULL,
    merchant_id      TEXT    NOT NULL,
    batch            BIGINT  NOT NULL,
    stan             BIGINT  NOT NULL,
    processing_code  TEXT    NOT NULL,
    condition_code   TEXT    NOT NULL,
    transaction_type TEXT    NOT NULL, -- 60.1 of the message to reverse
    original_batch   BIGINT ,
    original_stan    BIGINT ,
    amount_minor     BIGINT  NOT NULL,
    currency         BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL, -- microseconds since the epoch
    last_response    TEXT,
    done_at          BIGINT ,
    UNIQUE (terminal_id, batch, stan, transaction_type)
);

CREATE INDEX pending_reversals_due ON pending_reversals (next_attempt_at) WHERE done_at IS NULL;
