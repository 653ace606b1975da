-- Fraud reports (issue 9): a cardholder reports a transaction as fraud; the card is frozen and
-- an evidence pack is kept exactly as it was produced (`pack`, JSON whose `manifest` lists the
-- SHA-256 of each file), so that what the police or a lawyer downloads later is what was
-- sealed at the report. One report per transaction: reporting it again finds this one.
CREATE TABLE fraud_reports (
    id              TEXT   PRIMARY KEY,
    transaction_id  BIGINT NOT NULL UNIQUE,
    card_id         TEXT   NOT NULL,
    reported_by     TEXT   NOT NULL,
    reported_at     BIGINT NOT NULL,
    description     TEXT   NOT NULL,
    pack            TEXT   NOT NULL,
    pack_sha256     TEXT   NOT NULL
);
