-- A terminal's parameters as the acquirer's operators changed them after activation (issue
-- 11): the fields overridden (merchant name and city, host, contactless CVM limit, languages,
-- payment methods) as JSON, and the version of the set, which moves on at every change. The
-- host asks the terminal to download the set at its next sign-on when the terminal holds
-- another version. A terminal without a row has version 1, the platform's defaults.
CREATE TABLE terminal_parameters (
    terminal_id TEXT    NOT NULL PRIMARY KEY REFERENCES terminals (id),
    version     BIGINT  NOT NULL CHECK (version > 1),
    parameters  TEXT    NOT NULL,
    updated_by  TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- The legal representative's resident ID number is no longer kept in clear: the column holds
-- its keyed fingerprint (HMAC-SHA-256 in the HSM, 64 hex digits) for the duplicate check, and
-- the form its masked copy. Rows written before keep the number here until the onboarding
-- service replaces it at the next start (`Onboarding::protect_id_numbers`).
ALTER TABLE applications RENAME COLUMN id_number TO id_fingerprint;
