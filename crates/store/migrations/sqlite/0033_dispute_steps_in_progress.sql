-- Disputes (issue 9): a step that moves money claims the dispute first, in a status of its
-- own — `charging_back` while the issuer's chargeback is posted, `reversing` while the
-- merchant's win is reversed — so a concurrent step of another operator (a reject, the other
-- decision) finds the dispute taken and changes nothing, and money never moves under a
-- status that says it did not. SQLite cannot change a CHECK constraint: the table is rebuilt
-- with the same columns.
CREATE TABLE disputes_new (
    id             TEXT   PRIMARY KEY,
    transaction_id BIGINT NOT NULL UNIQUE,
    merchant_id    TEXT   NOT NULL,
    card_id        TEXT   NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor > 0),
    currency       BIGINT NOT NULL,
    reason         TEXT   NOT NULL CHECK (reason IN ('not_recognised', 'duplicate', 'wrong_amount', 'not_received', 'cancelled')),
    description    TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('opened', 'rejected', 'charging_back', 'charged_back', 'answered', 'reversing', 'won_by_cardholder', 'won_by_merchant')),
    opened_by      TEXT   NOT NULL,
    opened_at      BIGINT NOT NULL,
    reviewed_by    TEXT   NOT NULL,
    reviewed_at    BIGINT,
    review_note    TEXT   NOT NULL,
    answer_due_at  BIGINT,
    answered_by    TEXT   NOT NULL,
    answered_at    BIGINT,
    evidence       TEXT   NOT NULL,
    decided_by     TEXT   NOT NULL,
    decided_at     BIGINT,
    decision_note  TEXT   NOT NULL
);
INSERT INTO disputes_new SELECT * FROM disputes;
DROP TABLE disputes;
ALTER TABLE disputes_new RENAME TO disputes;
CREATE INDEX disputes_by_merchant ON disputes (merchant_id, opened_at);

-- The files of a dispute's answer (the merchant's uploads and the transaction certificate),
-- kept in the documents directory; the row says which, with its SHA-256.
CREATE TABLE dispute_documents (
    id           INTEGER PRIMARY KEY,
    dispute_id   TEXT    NOT NULL REFERENCES disputes (id),
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    bytes        BIGINT  NOT NULL,
    sha256       TEXT    NOT NULL,
    file         TEXT    NOT NULL,
    uploaded_by  TEXT    NOT NULL,
    uploaded_at  BIGINT  NOT NULL,
    UNIQUE (dispute_id, name)
);

-- The journal keeps the POS entry mode (field 22) and how the card and its holder were
-- verified (the issuer decision's chip cryptogram and PIN results), for statements and
-- transaction certificates. Written in the journal row the host writes anyway.
ALTER TABLE journal ADD COLUMN entry_mode TEXT;
ALTER TABLE journal ADD COLUMN card_verification TEXT;
