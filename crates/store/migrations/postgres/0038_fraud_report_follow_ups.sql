-- What a fraud report sets in motion once it is stored (issue 9): its case, the dispute of its
-- transaction and the `fraud_report.opened` webhooks. The rows are written in the same
-- transaction as the report, so a report never stands without them; a background job
-- (`api::fraud::run_follow_ups`, one node at a time) does each pending one by its business key
-- (the case's de-duplication key, the transaction's one dispute, the event id) and marks it
-- done, retrying with backoff until it is. `attempts` is raised by each claim, and only the
-- claim holding that count may finish the row, so a runner whose lease ran out cannot undo a
-- later one's work.
CREATE TABLE fraud_report_follow_ups (
    report_id       TEXT   NOT NULL REFERENCES fraud_reports (id),
    step            TEXT   NOT NULL,
    position        BIGINT NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'done')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT   NOT NULL DEFAULT '',
    outcome         TEXT   NOT NULL DEFAULT '',
    done_at         BIGINT,
    PRIMARY KEY (report_id, step)
);
CREATE INDEX fraud_report_follow_ups_due ON fraud_report_follow_ups (next_attempt_at) WHERE state = 'pending';
