-- Mini-program orders collected at this device: stored once per order id (a redelivered
-- order.created changes nothing), their status reported on evt/order, redeemed once.
CREATE TABLE orders (
    id             TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    lines          TEXT NOT NULL,
    paid_fen       INTEGER NOT NULL CHECK (paid_fen >= 0),
    collect_mode   TEXT NOT NULL,
    slot           INTEGER,
    prestocked     INTEGER NOT NULL DEFAULT 0,
    code_hash      TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    ticket_job     INTEGER,
    collected_at   TEXT,
    collected_by   TEXT,
    token_id       TEXT UNIQUE,
    reason         TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX orders_open ON orders (expires_at)
    WHERE state IN ('received', 'ticket_printed', 'ready');

-- Typed pickup codes, right or wrong: five wrong ones in ten minutes lock code entry.
CREATE TABLE pickup_attempts (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    at  TEXT NOT NULL,
    ok  INTEGER NOT NULL
) STRICT;
