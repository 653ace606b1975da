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

CREATE INDEX ledger_transfers_by_time ON ledger_transfers (timestamp);
CREATE INDEX ledger_transfers_by_debit ON ledger_transfers (debit, timestamp);
CREATE INDEX ledger_transfers_by_credit ON ledger_transfers (credit, timestamp);
CREATE INDEX ledger_holds_due ON ledger_transfers (expires_at) WHERE status = 1;
