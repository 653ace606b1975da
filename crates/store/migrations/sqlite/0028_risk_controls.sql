-- Risk controls (issue 10): signed anchors of the audit log.
--
-- `audit_anchor_keys`: the platform's Ed25519 keys that sign anchors, as TR-31 tokens under
-- the HSM's master key (never exportable) with their public keys. `audit_anchors`: the chain
-- head (`seq`, `hash`) signed at `at` with key `key_id`; `easypos audit verify` checks every
-- signature and that the chain still reaches every anchor, so a tail cut after an anchor is
-- caught. Both tables are append-only, like the log.
CREATE TABLE audit_anchor_keys (
    key_id     TEXT   NOT NULL PRIMARY KEY,
    token      TEXT   NOT NULL,
    public_key TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE audit_anchors (
    seq       INTEGER NOT NULL PRIMARY KEY,
    hash      TEXT    NOT NULL,
    at        BIGINT  NOT NULL,
    key_id    TEXT    NOT NULL,
    signature TEXT    NOT NULL
);
CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are append-only');
END;
CREATE TRIGGER audit_anchors_no_delete BEFORE DELETE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are append-only');
END;

-- Versions of the risk rules (docs/risk.md#editing-the-rules): each save through the API or
-- console is a new row with the whole TOML; the highest version is in force, on every host
-- within 2 seconds. A rollback is a new version with an earlier one's text. Never edited.
CREATE TABLE risk_rule_versions (
    version  INTEGER NOT NULL PRIMARY KEY,
    toml     TEXT    NOT NULL,
    saved_by TEXT    NOT NULL,
    saved_at BIGINT  NOT NULL,
    note     TEXT    NOT NULL
);
CREATE TRIGGER risk_rule_versions_no_update BEFORE UPDATE ON risk_rule_versions
BEGIN
    SELECT RAISE(ABORT, 'risk rule versions are append-only');
END;
CREATE TRIGGER risk_rule_versions_no_delete BEFORE DELETE ON risk_rule_versions
BEGIN
    SELECT RAISE(ABORT, 'risk rule versions are append-only');
END;

-- The operator (cashier) number of the terminal's sign-on, on each journaled message, for the
-- insider alerts (docs/risk.md#insider-alerts). NULL for rows from before.
ALTER TABLE journal ADD COLUMN operator TEXT;
