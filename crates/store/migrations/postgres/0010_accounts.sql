-- Accounts of the people who use the console and the API, their roles and tenants, API keys
-- for integrators, idempotency records of API requests, and which merchants a channel partner
-- referred. Passwords are kept only as argon2id hashes (PHC strings) and API keys only as
-- SHA-256 digests of the key; neither is ever stored or logged in clear.
CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    display_name   TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('platform_operator', 'issuer_operator', 'wallet_operator', 'merchant_admin', 'merchant_manager', 'cashier', 'cardholder', 'channel_partner')),
    tenant_kind    TEXT    NOT NULL CHECK (tenant_kind IN ('institution', 'merchant', 'cardholder', 'partner')),
    tenant_id      TEXT    NOT NULL,
    failed_logins  BIGINT  NOT NULL DEFAULT 0,
    locked_until   BIGINT,          -- unix seconds; no login before then
    created_at     BIGINT  NOT NULL  -- unix seconds
);

CREATE INDEX users_tenant ON users (tenant_kind, tenant_id);

CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY, -- the public part of the key, shown in lists
    user_id     TEXT    NOT NULL REFERENCES users (id),
    name        TEXT    NOT NULL,
    secret_hash BYTEA   NOT NULL CHECK (length(secret_hash) = 32),
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX api_keys_user ON api_keys (user_id);

-- One row per (caller, Idempotency-Key): the request's digest, and once it is answered the
-- answer, so a retry gets the original answer. `status` is NULL while the first request runs.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash BYTEA   NOT NULL CHECK (length(request_hash) = 32),
    status       BIGINT,
    body         BYTEA,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE partner_referrals (
    partner_id  TEXT NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    PRIMARY KEY (partner_id, merchant_id)
);
