-- Refunds from the console and the API, and disputes (issue 9, R9). A merchant's refund of a card sale, in
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

-- Disputes and chargebacks (issue 9, R9, R18): the cardholder disputes a sale (one dispute per
-- sale); the issuer's operator reviews it (rejected, or charged back: the card is credited and
-- the merchant's settlement debited, as ledger transfers); the merchant answers with evidence
-- before `answer_due_at`; the issuer decides (for the cardholder: the credit is final; for the
-- merchant: the chargeback is reversed). Every step keeps who and when.
CREATE TABLE disputes (
    id             TEXT   PRIMARY KEY,
    transaction_id BIGINT NOT NULL UNIQUE,
    merchant_id    TEXT   NOT NULL,
    card_id        TEXT   NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor > 0),
    currency       BIGINT NOT NULL,
    reason         TEXT   NOT NULL CHECK (reason IN ('not_recognised', 'duplicate', 'wrong_amount', 'not_received', 'cancelled')),
    description    TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('opened', 'rejected', 'charged_back', 'answered', 'won_by_cardholder', 'won_by_merchant')),
    opened_by      TEXT   NOT NULL,
    opened_at      BIGINT NOT NULL,
    reviewed_by    TEXT   NOT NULL,
    reviewed_at    BIGINT,
    review_note    TEXT   NOT NULL,
    answer_due_at  BIGINT,
    answered_by    TEXT   NOT NULL,
    answered_at    BIGINT,
    evidence       TEXT   NOT NULL,
    decided_by     TEXT   NOT NULL,
    decided_at     BIGINT,
    decision_note  TEXT   NOT NULL
);
CREATE INDEX disputes_by_merchant ON disputes (merchant_id, opened_at);
