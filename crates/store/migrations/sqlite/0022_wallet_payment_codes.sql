-- Consumer-presented payment codes (issue 8): each one-time code the wallet page shows, kept by
-- the SHA-256 of its digits (a code is a bearer credential for two minutes: never stored in
-- clear), with the wallet it charges, its expiry, and the charge that used it. A code is used
-- once: `used_by` is set only where it is still NULL.
CREATE TABLE wallet_payment_codes (
    code_digest TEXT   NOT NULL PRIMARY KEY,
    wallet_id   TEXT   NOT NULL REFERENCES wallets (id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_by     TEXT
);

CREATE INDEX wallet_payment_codes_by_expiry ON wallet_payment_codes (expires_at);
