-- Issue 10. The journal names the directory's card id (never its number) of an authorization,
-- so that the risk engine rebuilds its windows from the journal after a restart. A freeze may
-- now stop a merchant's refunds (scope `refunds`, target the merchant id) while its sales go
-- on: SQLite changes a CHECK by rebuilding the table.
ALTER TABLE journal ADD COLUMN card_id TEXT;
CREATE TABLE freezes_with_refunds (
    scope     TEXT   NOT NULL CHECK (scope IN ('terminal', 'merchant', 'card', 'refunds')),
    target    TEXT   NOT NULL,
    reason    TEXT   NOT NULL,
    frozen_by TEXT   NOT NULL,
    frozen_at BIGINT NOT NULL,
    PRIMARY KEY (scope, target)
);
INSERT INTO freezes_with_refunds (scope, target, reason, frozen_by, frozen_at)
    SELECT scope, target, reason, frozen_by, frozen_at FROM freezes;
DROP TABLE freezes;
ALTER TABLE freezes_with_refunds RENAME TO freezes;
