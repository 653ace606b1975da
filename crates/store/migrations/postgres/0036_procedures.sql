-- A merchant's operating procedures and the training record (issue 10, R16). The merchant's
-- admin writes the procedures; every save is a new version (never an edit), so that what a
-- member of staff acknowledged stays readable. Each acknowledgement records who, which
-- version and when: the training record. Saves and acknowledgements are also in the audit log
-- (`procedures.save`, `procedures.acknowledge`).
CREATE TABLE procedure_versions (
    merchant_id TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    text        TEXT   NOT NULL,
    saved_by    TEXT   NOT NULL,
    saved_at    BIGINT NOT NULL,
    note        TEXT   NOT NULL,
    PRIMARY KEY (merchant_id, version)
);

CREATE TABLE procedure_acknowledgements (
    merchant_id     TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    user_id         TEXT   NOT NULL REFERENCES users (id),
    acknowledged_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, version, user_id),
    FOREIGN KEY (merchant_id, version) REFERENCES procedure_versions (merchant_id, version)
);

CREATE INDEX procedure_acknowledgements_user ON procedure_acknowledgements (user_id);

-- Neither a version nor the training record is ever edited or removed.
CREATE FUNCTION procedure_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'procedure versions are append-only';
END;
$$;
CREATE TRIGGER procedure_versions_append_only BEFORE UPDATE OR DELETE ON procedure_versions
    FOR EACH ROW EXECUTE FUNCTION procedure_versions_append_only();
CREATE FUNCTION procedure_acknowledgements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the training record is append-only';
END;
$$;
CREATE TRIGGER procedure_acknowledgements_append_only BEFORE UPDATE OR DELETE ON procedure_acknowledgements
    FOR EACH ROW EXECUTE FUNCTION procedure_acknowledgements_append_only();
