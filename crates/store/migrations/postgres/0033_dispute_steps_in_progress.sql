-- Disputes (issue 9): a step that moves money claims the dispute first, in a status of its
-- own — `charging_back` while the issuer's chargeback is posted, `reversing` while the
-- merchant's win is reversed — so a concurrent step of another operator (a reject, the other
-- decision) finds the dispute taken and changes nothing, and money never moves under a
-- status that says it did not.
ALTER TABLE disputes DROP CONSTRAINT disputes_status_check;
ALTER TABLE disputes ADD CONSTRAINT disputes_status_check CHECK (status IN ('opened', 'rejected', 'charging_back', 'charged_back', 'answered', 'reversing', 'won_by_cardholder', 'won_by_merchant'));

-- The files of a dispute's answer (the merchant's uploads and the transaction certificate),
-- kept in the documents directory; the row says which, with its SHA-256.
CREATE TABLE dispute_documents (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
