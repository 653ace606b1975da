-- Getting a terminal (issue 11). Applications: the form as JSON (the settlement card number
-- only masked; its keyed fingerprint beside it), the columns the checks and the queues search
-- by, and the review's trail. A change is applied only to the version its writer read.
CREATE TABLE applications (
    id               TEXT    NOT NULL PRIMARY KEY,
    resume_digest    TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('draft', 'submitted', 'more_info', 'approving', 'approved', 'rejected')),
    partner_id       TEXT,
    credit_code      TEXT,
    id_number        TEXT,
    card_fingerprint TEXT,
    form             TEXT    NOT NULL,
    risk_score       INTEGER,
    risk_reasons     TEXT,
    reviewed_by      TEXT,
    approved_by      TEXT,
    note             TEXT,
    merchant_id      TEXT,
    terminal_ids     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    version          INTEGER NOT NULL
);

CREATE INDEX applications_by_status ON applications (status, updated_at);
CREATE INDEX applications_by_partner ON applications (partner_id);
CREATE INDEX applications_by_credit_code ON applications (credit_code);
CREATE INDEX applications_by_id_number ON applications (id_number);

-- Uploaded documents: the file lives under the data directory (never the web root); here are
-- its kind, sniffed type, size and SHA-256.
CREATE TABLE application_documents (
    application_id TEXT    NOT NULL REFERENCES applications (id),
    kind           TEXT    NOT NULL,
    content_type   TEXT    NOT NULL,
    bytes          INTEGER NOT NULL,
    sha256         TEXT    NOT NULL,
    file           TEXT    NOT NULL,
    uploaded_at    INTEGER NOT NULL,
    PRIMARY KEY (application_id, kind)
);

-- A terminal's life beyond the directory's active/inactive: model, serial number, kind,
-- location and status (provisioned, active, suspended, lost, stolen, retired).
CREATE TABLE terminal_details (
    terminal_id TEXT    NOT NULL PRIMARY KEY REFERENCES terminals (id),
    model       TEXT    NOT NULL,
    serial      TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    location    TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('provisioned', 'active', 'suspended', 'lost', 'stolen', 'retired')),
    updated_at  INTEGER NOT NULL
);

-- One-time activation codes, kept only as SHA-256 digests; redeemed by one conditional update.
CREATE TABLE activation_codes (
    digest      TEXT    NOT NULL PRIMARY KEY,
    terminal_id TEXT    NOT NULL REFERENCES terminals (id),
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE INDEX activation_codes_by_terminal ON activation_codes (terminal_id);

-- Invitations of new merchant administrators to choose their password (digest of the token).
CREATE TABLE invitations (
    digest     TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- Counters that allocate merchant and terminal ids.
CREATE TABLE sequences (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
