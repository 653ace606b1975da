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

-- Deliberately no secondary indexes on accounts or time: with random keys each would cost a
-- random page write per transfer and cap the group commit's throughput. Ids are expected to be
-- time-ordered (see ledger::TransferId::from_time_and_key), which makes the primary key itself
-- a time index; account histories belong to the journals of later tables.
CREATE INDEX ledger_holds_due ON ledger_transfers (expires_at) WHERE status = 1;
