-- Disputes (issue 9): a step that moves money claims the dispute first, in a status of its
-- own — `charging_back` while the issuer's chargeback is posted, `reversing` while the
-- merchant's win is reversed — so a concurrent step of another operator (a reject, the other
-- decision) finds the dispute taken and changes nothing, and money never moves under a
-- status that says it did not.
ALTER TABLE disputes DROP CONSTRAINT disputes_status_check;
ALTER TABLE disputes ADD CONSTRAINT disputes_status_check CHECK (status IN ('opened', 'rejected', 'charging_back', 'charged_back', 'answered', 'reversing', 'won_by_cardholder', 'won_by_merchant'));
