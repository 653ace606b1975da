-- Wallets (issue 8): one per cardholder in the wallet institution's books. The balance is the
-- ledger account derived from the wallet id (never a column here); this table keeps the owner,
-- the linked debit card for top-ups and the payment password as an argon2id hash, with the
-- failures counted here so that the try limit holds across hosts.
CREATE TABLE wallets (
    id                TEXT    NOT NULL PRIMARY KEY,
    cardholder_id     TEXT    NOT NULL,
    currency          TEXT    NOT NULL,
    linked_card_id    TEXT,
    password_hash     TEXT    NOT NULL,
    password_failures BIGINT  NOT NULL DEFAULT 0,
    locked_until      BIGINT ,
    created_at        BIGINT  NOT NULL
);

CREATE INDEX wallets_by_cardholder ON wallets (cardholder_id);

-- Orders of merchant-presented QR payments. The id is the order reference carried in the QR
-- (ID 62, reference label) and the business key of the order's transfers; a status changes
-- only from the one the writer read (`UPDATE … WHERE status = …`), so two writers never both win.
CREATE TABLE wallet_orders (
    id           TEXT    NOT NULL PRIMARY KEY,
    merchant_id  TEXT    NOT NULL,
    terminal_id  TEXT    NOT NULL,
    amount_minor BIGINT  NOT NULL CHECK (amount_minor > 0),
    currency     TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('created', 'paid', 'refunded', 'closed', 'reversed')),
    wallet_id    TEXT    REFERENCES wallets (id),
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE INDEX wallet_orders_open ON wallet_orders (expires_at) WHERE status = 'created';
