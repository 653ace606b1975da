-- Refunds from the console and the API (issue 9, R9). A merchant's refund of a card sale, in
-- full or in parts, each part its own row and its own pair of ledger transfers (named by
-- `seq`); and a cardholder's request for one (`seq` 0), which the merchant accepts (a refund
-- row names it in `request_id`) or declines with a reason.
--
-- status: requested (a cardholder's request) → accepted | declined;
--         pending_approval (above the approval threshold) → approved | declined;
--         approved → refunded (posted) | failed (the acquirer refused it: freeze, risk rule,
--         ledger; `response` holds the code).
-- The amounts of pending_approval, approved and refunded rows are reserved against the sale:
-- their sum never exceeds what it captured (checked in the same transaction as the insert).
CREATE TABLE refunds (
    id             TEXT   PRIMARY KEY,
    transaction_id BIGINT NOT NULL,
    merchant_id    TEXT   NOT NULL,
    seq            BIGINT NOT NULL CHECK (seq >= 0),
    request_id     TEXT   NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor > 0),
    currency       BIGINT NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('requested', 'accepted', 'pending_approval', 'approved', 'refunded', 'declined', 'failed')),
    reason         TEXT   NOT NULL,
    requested_by   TEXT   NOT NULL,
    requested_at   BIGINT NOT NULL,
    decided_by     TEXT   NOT NULL,
    decided_at     BIGINT,
    response       TEXT   NOT NULL
);
-- A part's number names its transfers: two parts of one sale never share it.
CREATE UNIQUE INDEX refunds_part ON refunds (transaction_id, seq) WHERE seq > 0;
CREATE INDEX refunds_by_transaction ON refunds (transaction_id, requested_at);
CREATE INDEX refunds_by_merchant ON refunds (merchant_id, status);
