-- The directory: who exists (institutions, merchants, terminals, staff, cardholders, cards).
-- Card numbers are never stored in clear: only the first six and last four digits.
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE institutions (
    id      INTEGER NOT NULL PRIMARY KEY,
    kind    TEXT    NOT NULL CHECK (kind IN ('acquirer', 'debit_bank', 'credit_issuer', 'wallet')),
    name    TEXT    NOT NULL,
    name_zh TEXT    NOT NULL
);

CREATE TABLE merchants (
    id                 TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 15),
    acquirer           INTEGER NOT NULL REFERENCES institutions (id),
    name               TEXT    NOT NULL,
    name_zh            TEXT    NOT NULL,
    city               TEXT    NOT NULL,
    mcc                TEXT    NOT NULL CHECK (length(mcc) = 4),
    settlement_account BLOB   NOT NULL
);

CREATE TABLE terminals (
    id          TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 8),
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    status      TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'frozen'))
);

CREATE TABLE staff (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    operator_no TEXT NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('cashier', 'supervisor', 'manager')),
    PRIMARY KEY (merchant_id, operator_no)
);

CREATE TABLE cardholders (
    id      TEXT NOT NULL PRIMARY KEY,
    name    TEXT NOT NULL,
    name_zh TEXT NOT NULL
);

CREATE TABLE cards (
    id            TEXT    NOT NULL PRIMARY KEY,
    cardholder_id TEXT    NOT NULL REFERENCES cardholders (id),
    issuer        INTEGER NOT NULL REFERENCES institutions (id),
    product       TEXT    NOT NULL CHECK (product IN ('debit', 'credit')),
    pan_first6    TEXT    NOT NULL CHECK (length(pan_first6) = 6),
    pan_last4     TEXT    NOT NULL CHECK (length(pan_last4) = 4),
    expiry        TEXT    NOT NULL CHECK (length(expiry) = 4),
    currency      INTEGER NOT NULL,
    account       BLOB   NOT NULL
);
