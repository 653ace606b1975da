-- Where each supervisor's terminal password has allowed a void or refund (issue 10, insider
-- alerts): the host's "unusual terminal" watch reads it at start and writes each new terminal,
-- so that a restart does not forget which terminals are usual. Per supervisor the newest
-- terminals are kept (risk::insider::SUPERVISOR_TERMINALS); older rows are deleted.
CREATE TABLE supervisor_terminals (
    merchant_id  TEXT   NOT NULL,
    operator_no  TEXT   NOT NULL,
    terminal_id  TEXT   NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, operator_no, terminal_id)
);
