-- Issue 15. What one host changed of a terminal that every host keeps in memory (its directory
-- record, its parameter set, its master key): written in the change's own transaction, read by
-- every host sharing the database every couple of seconds (docs/scaling.md), which then reads
-- the terminal afresh. Rows older than a day are deleted by the writers; a host that starts
-- reads everything afresh anyway.
CREATE TABLE host_changes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    terminal_id TEXT   NOT NULL,
    at          BIGINT NOT NULL  -- seconds since the epoch
);
CREATE INDEX host_changes_at ON host_changes (at);
