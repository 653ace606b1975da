-- Ledger: accounts with running totals, immutable transfers (only a hold's status changes).
-- Ids are 128-bit, stored as 16 big-endian bytes. Timestamps are nanoseconds since the epoch.
CREATE TABLE ledger_accounts (
    id              BYTEA    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    institution     INTEGER  NOT NULL,
    currency        INTEGER  NOT NULL,
    code            INTEGER  NOT NULL,
    balance_rule    SMALLINT NOT NULL,
    debits_pending  BIGINT   NOT NULL CHECK (debits_pending >= 0),
    debits_posted   BIGINT   NOT NULL CHECK (debits_posted >= 0),
    credits_pending BIGINT   NOT NULL CHECK (credits_pending >= 0),
    credits_posted  BIGINT   NOT NULL CHECK (credits_posted >= 0),
    created_at      BIGINT   NOT NULL
);

CREATE TABLE ledger_transfers (
    id               BYTEA    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    kind             SMALLINT NOT NULL,
    debit            BYTEA    NOT NULL,
    credit           BYTEA    NOT NULL,
    amount           BIGINT   NOT NULL CHECK (amount > 0),
    currency         INTEGER  NOT NULL,
    requested_amount BIGINT,
    pending_id       BYTEA,
    timeout_seconds  INTEGER,
    linked           BOOLEAN  NOT NULL,
    code             INTEGER  NOT NULL,
    user_data        BYTEA    NOT NULL,
    institution      INTEGER  NOT NULL,
    timestamp        BIGINT   NOT NULL,
    expires_at       BIGINT,
    status           SMALLINT
);

-- Deliberately no secondary indexes on accounts or time: with random keys each would cost a
-- random page write per transfer and cap the group commit's throughput. Ids are expected to be
-- time-ordered (see ledger::TransferId::from_time_and_key), which makes the primary key itself
-- a time index; account histories belong to the journals of later tables.
CREATE INDEX ledger_holds_due ON ledger_transfers (expires_at) WHERE status = 1;
