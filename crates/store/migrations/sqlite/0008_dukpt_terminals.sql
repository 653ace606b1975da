-- DUKPT terminals (ANSI X9.24-1 TDES, X9.24-3 AES) beside master/session ones. For a DUKPT
-- terminal `tmk_key` names the base derivation key (BDK) in hsm_keys, the working keys stay
-- empty (each message's keys are derived from the BDK and the KSN it carries), and
-- `initial_ksn` is the device's KSN with a zero counter, in hex: a message whose KSN names
-- another device is refused. SQLite cannot change a CHECK constraint in place, so the table
-- is rebuilt.
CREATE TABLE terminal_sessions_v8 (
    terminal_id  TEXT NOT NULL PRIMARY KEY REFERENCES terminals (id),
    key_scheme   TEXT NOT NULL CHECK (key_scheme IN ('master-session', 'dukpt-tdes', 'dukpt-aes')),
    tmk_key      TEXT NOT NULL,
    pin_key      TEXT,
    mac_key      TEXT,
    batch        INTEGER NOT NULL CHECK (batch BETWEEN 1 AND 999999),
    operator     TEXT,
    signed_on_at INTEGER,
    initial_ksn  TEXT,
    CHECK ((key_scheme = 'master-session') = (initial_ksn IS NULL))
);
INSERT INTO terminal_sessions_v8 (terminal_id, key_scheme, tmk_key, pin_key, mac_key, batch, operator, signed_on_at)
    SELECT terminal_id, key_scheme, tmk_key, pin_key, mac_key, batch, operator, signed_on_at FROM terminal_sessions;
DROP TABLE terminal_sessions;
ALTER TABLE terminal_sessions_v8 RENAME TO terminal_sessions;
