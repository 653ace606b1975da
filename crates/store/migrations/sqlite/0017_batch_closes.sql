-- Terminal batch close (批结算) and batch upload (批上送), issue 12: the advices a terminal
-- uploads after its totals disagreed with the host's, and each closed batch with the
-- differences the host found between the terminal's transactions and its own journal.
-- Card numbers are masked (first six and last four digits), as the journal keeps them.

-- One row per uploaded transaction (0320): what the terminal says it did. An upload round
-- starts empty (the host clears a batch's advices when it answers "disagree"), and a repeated
-- advice replaces the earlier one.
CREATE TABLE batch_advices (
    terminal_id  TEXT    NOT NULL,
    batch        INTEGER NOT NULL,
    stan         INTEGER NOT NULL, -- the uploaded transaction's own trace number
    kind         TEXT    NOT NULL, -- Sale, SaleVoid, Refund, PreAuthorizationCompletion, CompletionVoid
    amount_minor INTEGER NOT NULL,
    currency     INTEGER NOT NULL,
    card         TEXT,
    rrn          TEXT,
    auth_code    TEXT,
    received_at  INTEGER NOT NULL, -- microseconds since the epoch
    PRIMARY KEY (terminal_id, batch, stan)
);

-- One row per closed batch: both sides' totals, and whether they agreed or the upload
-- resolved the difference.
CREATE TABLE batch_closes (
    id                    INTEGER PRIMARY KEY,
    terminal_id           TEXT    NOT NULL,
    merchant_id           TEXT    NOT NULL,
    batch                 INTEGER NOT NULL,
    closed_at             INTEGER NOT NULL, -- microseconds since the epoch
    status                TEXT    NOT NULL CHECK (status IN ('agreed', 'resolved')),
    currency              INTEGER NOT NULL,
    terminal_debit_count  INTEGER NOT NULL,
    terminal_debit_minor  INTEGER NOT NULL,
    terminal_credit_count INTEGER NOT NULL,
    terminal_credit_minor INTEGER NOT NULL,
    host_debit_count      INTEGER NOT NULL,
    host_debit_minor      INTEGER NOT NULL,
    host_credit_count     INTEGER NOT NULL,
    host_credit_minor     INTEGER NOT NULL
);
CREATE INDEX batch_closes_closed_at ON batch_closes (closed_at);

-- One row per transaction on which the two sides differ.
CREATE TABLE batch_differences (
    close_id              INTEGER NOT NULL REFERENCES batch_closes (id),
    stan                  INTEGER NOT NULL,
    difference            TEXT    NOT NULL CHECK (difference IN ('terminal_only', 'host_only', 'differs')),
    terminal_kind         TEXT,
    terminal_amount_minor INTEGER,
    host_kind             TEXT,
    host_amount_minor     INTEGER,
    card                  TEXT,
    PRIMARY KEY (close_id, stan)
);
