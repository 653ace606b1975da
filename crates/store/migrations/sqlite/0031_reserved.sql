-- Reserved for another branch's migration 31 (the lead replaces this file when merging): a
-- placeholder keeps the versions contiguous on this branch.
SELECT 1;
