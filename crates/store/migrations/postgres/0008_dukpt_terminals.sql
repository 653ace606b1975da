-- DUKPT terminals (ANSI X9.24-1 TDES, X9.24-3 AES) beside master/session ones. For a DUKPT
-- terminal `tmk_key` names the base derivation key (BDK) in hsm_keys, the working keys stay
-- empty (each message's keys are derived from the BDK and the KSN it carries), and
-- `initial_ksn` is the device's KSN with a zero counter, in hex: a message whose KSN names
-- another device is refused.
ALTER TABLE terminal_sessions DROP CONSTRAINT terminal_sessions_key_scheme_check;
ALTER TABLE terminal_sessions ADD CONSTRAINT terminal_sessions_key_scheme_check
    CHECK (key_scheme IN ('master-session', 'dukpt-tdes', 'dukpt-aes'));
ALTER TABLE terminal_sessions ADD COLUMN initial_ksn TEXT;
ALTER TABLE terminal_sessions ADD CONSTRAINT terminal_sessions_initial_ksn_check
    CHECK ((key_scheme = 'master-session') = (initial_ksn IS NULL));
