-- Emergency password resets (issue 10, R16/R18): a user with a row here must choose a new
-- password before the console or the API serve them again (their API keys and HTTP Basic are
-- refused meanwhile). The row is deleted when they have. Who required it and why are also in
-- the audit log (`staff.password_reset`).
CREATE TABLE password_resets (
    user_id     TEXT   NOT NULL PRIMARY KEY REFERENCES users (id),
    required_at BIGINT NOT NULL,
    required_by TEXT   NOT NULL,
    reason      TEXT   NOT NULL
);
