-- End of day's reports (issue 12), kept for the console: each file `easypos settle` writes, by
-- business date and file name. A statement names its merchant, so a merchant's staff read only
-- their own; clearing files and the reconciliation report are the acquirer's operators'. A
-- rerun writes them again (the reconciliation report then shows the breaks adjusted since).
CREATE TABLE settlement_reports (
    date        TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    kind        TEXT   NOT NULL CHECK (kind IN ('statement', 'clearing', 'reconciliation', 'batches')),
    merchant_id TEXT,
    currency    TEXT   NOT NULL,
    written_at  BIGINT NOT NULL,
    content     BYTEA  NOT NULL,
    PRIMARY KEY (date, name)
);
CREATE INDEX settlement_reports_by_merchant ON settlement_reports (merchant_id, date);
