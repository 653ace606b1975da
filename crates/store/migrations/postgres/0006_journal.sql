-- The message journal: every terminal message in and its answer out, with card data masked
-- (first six and last four digits of the card number, nothing of track 2, PIN block, CVV or
-- keys), with timing, and the request's MAC (field 64, hex), which tells a retransmission
-- from another message reusing its trace number. The answer is kept, packed, for answering duplicates; only answers of
-- financial messages are kept, and they carry no card data (the host never echoes fields 2,
-- 35, 52 or 55 of a request).
CREATE TABLE journal (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    BIGINT  NOT NULL, -- microseconds since the epoch
    duration_us    BIGINT  NOT NULL,
    peer           TEXT    NOT NULL,
    terminal_id    TEXT    NOT NULL,
    merchant_id    TEXT    NOT NULL,
    mti            TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    batch          BIGINT ,
    stan           BIGINT ,
    transmission   TEXT,
    amount_minor   BIGINT ,
    currency       BIGINT ,
    card           TEXT,
    original_batch BIGINT ,
    original_stan  BIGINT ,
    response       TEXT,
    rrn            TEXT,
    auth_code      TEXT,
    answer         BYTEA,
    request_mac    TEXT
);

-- Duplicates and batch totals look a terminal's messages up by batch and trace number.
CREATE INDEX journal_terminal ON journal (terminal_id, batch, stan);
