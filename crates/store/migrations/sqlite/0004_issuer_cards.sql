-- What the issuer keeps about a card for authorization: its standing and PIN reference
-- (written at issuance) and its state (PIN failures, highest ATC, spend of the day), which
-- authorizations change together with their ledger transfers, in one transaction.
CREATE TABLE issuer_cards (
    card_id            TEXT    NOT NULL PRIMARY KEY REFERENCES cards (id),
    status             TEXT    NOT NULL CHECK (status IN ('active', 'frozen', 'blocked', 'lost', 'stolen')),
    service_code       TEXT    NOT NULL CHECK (length(service_code) = 3),
    pin_method         TEXT    CHECK (pin_method IN ('visa-pvv', 'ibm3624')),
    pin_key_index      INTEGER,
    pin_reference      TEXT,
    cryptogram_version INTEGER NOT NULL,
    daily_limit_minor  INTEGER,
    pin_failures       INTEGER NOT NULL CHECK (pin_failures >= 0),
    last_atc           INTEGER,
    spent_minor        INTEGER NOT NULL CHECK (spent_minor >= 0),
    spent_on           TEXT
);
