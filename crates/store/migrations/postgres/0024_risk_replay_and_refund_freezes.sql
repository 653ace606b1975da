-- Issue 10. The journal names the directory's card id (never its number) of an authorization,
-- so that the risk engine rebuilds its windows from the journal after a restart. A freeze may
-- now stop a merchant's refunds (scope `refunds`, target the merchant id) while its sales go
-- on.
ALTER TABLE journal ADD COLUMN card_id TEXT;
ALTER TABLE freezes DROP CONSTRAINT freezes_scope_check;
ALTER TABLE freezes ADD CONSTRAINT freezes_scope_check
    CHECK (scope IN ('terminal', 'merchant', 'card', 'refunds'));
