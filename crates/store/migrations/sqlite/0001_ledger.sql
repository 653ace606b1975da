-- Ledger: accounts with running totals, immutable transfers (only a hold's status changes).
-- Ids are 128-bit, stored as 16 big-endian bytes. Timestamps are nanoseconds since the epoch.
CREATE TABLE ledger_accounts (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    institution     INTEGER NOT NULL,
    currency        INTEGER NOT NULL,
    code            INTEGER NOT NULL,
    balance_rule    INTEGER NOT NULL,
    debits_pending  INTEGER NOT NULL CHECK (debits_pending >= 0),
    debits_posted   INTEGER NOT NULL CHECK (debits_posted >= 0),
    credits_pending INTEGER NOT NULL CHECK (credits_pending >= 0),
    credits_posted  INTEGER NOT NULL CHECK (credits_posted >= 0),
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ledger_transfers (
    id               BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    kind             INTEGER NOT NULL,
    debit            BLOB    NOT NULL,
    credit           BLOB    NOT NULL,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    currency         INTEGER NOT NULL,
    requested_amount INTEGER,
    pending_id       BLOB,
    timeout_seconds  INTEGER,
    linked           INTEGER NOT NULL,
    code             INTEGER NOT NULL,
    user_data        BLOB    NOT NULL,
    institution      INTEGER NOT NULL,
    timestamp        INTEGER NOT NULL,
    expires_at       INTEGER,
    status           INTEGER
) WITHOUT ROWID;

CREATE INDEX ledger_transfers_by_time ON ledger_transfers (timestamp);
CREATE INDEX ledger_transfers_by_debit ON ledger_transfers (debit, timestamp);
CREATE INDEX ledger_transfers_by_credit ON ledger_transfers (credit, timestamp);
CREATE INDEX ledger_holds_due ON ledger_transfers (expires_at) WHERE status = 1;
