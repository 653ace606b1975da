-- TOTP second factor (RFC 6238) of console users. The secret itself is never stored: it is
-- derived inside the HSM from the platform's TOTP key, the user id and `totp_nonce` (a random,
-- non-secret enrolment id); a new enrolment is a new nonce. `totp_last_step` is the last time
-- step whose code was accepted, so a code cannot be used twice (RFC 6238 section 5.2).
ALTER TABLE users ADD COLUMN totp_nonce TEXT;
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
