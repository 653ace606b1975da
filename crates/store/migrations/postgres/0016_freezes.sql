-- Emergency freezes (issue 10): a frozen terminal, merchant or card is declined on its next
-- authorization. One row per frozen thing; unfreezing deletes the row (who froze it and why
-- stays in the logs). `target` is a terminal id, a merchant id or a directory card id, never a
-- card number.
CREATE TABLE freezes (
    scope     TEXT   NOT NULL CHECK (scope IN ('terminal', 'merchant', 'card')),
    target    TEXT   NOT NULL,
    reason    TEXT   NOT NULL,
    frozen_by TEXT   NOT NULL,
    frozen_at BIGINT NOT NULL,
    PRIMARY KEY (scope, target)
);
