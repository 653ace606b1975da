-- End of day reads a cycle's chargebacks (issue 12): the disputes charged back or decided in the
-- cycle's window (`Store::disputes_moved_between`), by the time of each step.
CREATE INDEX disputes_by_review ON disputes (reviewed_at);
CREATE INDEX disputes_by_decision ON disputes (decided_at);
