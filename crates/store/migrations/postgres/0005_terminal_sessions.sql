-- A terminal's keys and session (UnionPay-style master/session scheme): the name of its
-- terminal master key in hsm_keys, the working PIN and MAC keys of its current sign-on as
-- TR-31 tokens under the HSM's master key, its batch and the operator signed on.
CREATE TABLE terminal_sessions (
    terminal_id  TEXT NOT NULL PRIMARY KEY REFERENCES terminals (id),
    key_scheme   TEXT NOT NULL CHECK (key_scheme IN ('master-session')),
    tmk_key      TEXT NOT NULL,
    pin_key      TEXT,
    mac_key      TEXT,
    batch        BIGINT NOT NULL CHECK (batch BETWEEN 1 AND 999999),
    operator     TEXT,
    signed_on_at BIGINT
);
