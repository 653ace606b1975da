-- Incidents (issue 10, R15): a merchant's ticket with the acquirer's operations. `id` comes
-- from the `sequences` row `incident`. `severity` sets the response-time target (settings
-- `incidents.response_minutes`); `response_due_at` is fixed when the incident is opened, so a
-- changed setting does not move the target of an incident already open. `partners`: the
-- channel partners that referred the merchant, told when it was opened (comma-separated).
-- `messages` counts the thread's messages and numbers the next one.
CREATE TABLE incidents (
    id               BIGINT NOT NULL PRIMARY KEY,
    merchant_id      TEXT   NOT NULL,
    title            TEXT   NOT NULL,
    severity         TEXT   NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status           TEXT   NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')),
    opened_by        TEXT   NOT NULL,
    opened_at        BIGINT NOT NULL,
    response_due_at  BIGINT NOT NULL,
    acknowledged_by  TEXT,
    acknowledged_at  BIGINT,
    resolved_at      BIGINT,
    closed_at        BIGINT,
    updated_at       BIGINT NOT NULL,
    partners         TEXT   NOT NULL,
    messages         BIGINT NOT NULL
);
CREATE INDEX incidents_by_merchant ON incidents (merchant_id, id);

-- What an incident is about: journal transactions (`transaction`, the journal id) and risk
-- cases (`case`, the case id), each checked to be the merchant's when linked.
CREATE TABLE incident_links (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    kind        TEXT   NOT NULL CHECK (kind IN ('transaction', 'case')),
    target      TEXT   NOT NULL,
    PRIMARY KEY (incident_id, kind, target)
);

-- The thread: messages, and their attachment when they have one (the file under the data
-- directory's `documents/incidents/<id>/`, its sniffed type, size and SHA-256). Never edited.
CREATE TABLE incident_messages (
    incident_id       BIGINT NOT NULL REFERENCES incidents (id),
    seq               BIGINT NOT NULL,
    at                BIGINT NOT NULL,
    author            TEXT   NOT NULL,
    text              TEXT   NOT NULL,
    attachment_name   TEXT,
    attachment_type   TEXT,
    attachment_bytes  BIGINT,
    attachment_sha256 TEXT,
    attachment_file   TEXT,
    PRIMARY KEY (incident_id, seq)
);
