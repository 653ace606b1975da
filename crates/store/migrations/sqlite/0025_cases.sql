-- The case queue (issue 10): risk rules that alert, put up for review or decline open a case;
-- analysts assign, comment and resolve it, and an outcome may freeze the card, terminal or
-- merchant. One open case per merchant, terminal, card and set of rules (`dedup_key`): a rule
-- that keeps firing counts `hits` on it instead of opening more.
CREATE TABLE cases (
    id          INTEGER PRIMARY KEY,
    opened_at   BIGINT  NOT NULL,
    last_at     BIGINT  NOT NULL,
    hits        BIGINT  NOT NULL,
    merchant_id TEXT    NOT NULL,
    terminal_id TEXT    NOT NULL,
    card_id     TEXT    NOT NULL,
    rules       TEXT    NOT NULL,
    severity    TEXT    NOT NULL CHECK (severity IN ('alert', 'review', 'decline')),
    status      TEXT    NOT NULL CHECK (status IN ('open', 'resolved')),
    assignee    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    resolved_by TEXT    NOT NULL,
    resolved_at BIGINT,
    dedup_key   TEXT    NOT NULL
);
CREATE UNIQUE INDEX cases_open_once ON cases (dedup_key) WHERE status = 'open';
CREATE INDEX cases_by_merchant ON cases (merchant_id, id);
CREATE TABLE case_comments (
    case_id BIGINT NOT NULL REFERENCES cases (id),
    seq     BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    author  TEXT   NOT NULL,
    text    TEXT   NOT NULL,
    PRIMARY KEY (case_id, seq)
);
