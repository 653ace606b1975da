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

-- Supervisors' terminal passwords (issue 10, R16): never the password, only its IBM 3624
-- offset under the platform's staff PIN verification key in the HSM (`platform/staff-pvk`),
-- with the merchant and operator number as validation data. The host checks the password a
-- void or refund carries (field 63) against it inside the HSM.
CREATE TABLE staff_passwords (
    merchant_id TEXT   NOT NULL,
    operator_no TEXT   NOT NULL,
    pin_offset  TEXT   NOT NULL,
    set_by      TEXT   NOT NULL,
    set_at      BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, operator_no)
);
