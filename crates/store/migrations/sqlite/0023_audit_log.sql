-- The audit log (issue 10): every back-office action (logins, freezes, keys, staff, rules,
-- cases) as one row whose `hash` covers its contents and the previous row's hash, so that
-- `easypos audit verify` finds any row changed, inserted or deleted. Hashes are lower-case
-- hex SHA-256 (docs/audit.md gives the exact bytes). Rows are never updated or deleted: the
-- triggers refuse it, and a chain that was edited behind them shows the break.
CREATE TABLE audit_log (
    seq       INTEGER NOT NULL PRIMARY KEY,
    at        BIGINT  NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    tenant    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_by_target ON audit_log (target, seq);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
