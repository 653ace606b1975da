-- Keys the platform uses, as TR-31 blocks under the HSM's local master key (never in clear),
-- named by role (for example "issuer/20/cvk"). The check value tells which key a name holds.
CREATE TABLE hsm_keys (
    name        TEXT NOT NULL PRIMARY KEY,
    token       TEXT NOT NULL,
    check_value TEXT NOT NULL
);

-- Cards are found by a keyed fingerprint of their number (HMAC-SHA-256 under the
-- "platform/pan-fingerprint" key); the number itself is not stored.
ALTER TABLE cards ADD COLUMN pan_fingerprint BYTEA;
CREATE UNIQUE INDEX cards_by_pan_fingerprint ON cards (pan_fingerprint);
