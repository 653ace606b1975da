-- The highest KSN transaction counter the host has accepted from a DUKPT terminal (0 before
-- any): a message whose counter is not above it is a replay (or out of order) and is refused
-- with 63 before anything else is done. It lives on the terminal's session row, which every
-- DUKPT message reads anyway; master/session terminals keep 0.
ALTER TABLE terminal_sessions ADD COLUMN ksn_counter INTEGER NOT NULL DEFAULT 0 CHECK (ksn_counter >= 0);
