-- Refunds: one persisted state machine per refund. The refund number is deterministic (the
-- sale and its refund sequence), so a retry reuses it and the channel refunds once.
CREATE TABLE refunds (
    refund_no    TEXT PRIMARY KEY,
    sale_id      TEXT NOT NULL REFERENCES sales (id),
    refund_seq   INTEGER NOT NULL CHECK (refund_seq BETWEEN 1 AND 50),
    trade_no     TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    reason       TEXT NOT NULL,
    origin       TEXT NOT NULL,
    request_id   TEXT UNIQUE,
    state        TEXT NOT NULL,
    restock      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TEXT,
    refund_id    TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    succeeded_at TEXT,
    UNIQUE (sale_id, refund_seq)
) STRICT;
CREATE INDEX refunds_due ON refunds (next_at) WHERE next_at IS NOT NULL;
-- At most one refund request per sale in flight, whatever path started it.
CREATE UNIQUE INDEX refunds_one_in_flight ON refunds (sale_id)
    WHERE state IN ('requested', 'processing');

CREATE TABLE refund_lines (
    refund_no      TEXT NOT NULL REFERENCES refunds (refund_no),
    line_no        INTEGER NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_fen INTEGER NOT NULL CHECK (unit_price_fen >= 0),
    PRIMARY KEY (refund_no, line_no)
) STRICT;

-- A paid sale whose goods were not released is marked here (by the release service, in the
-- transaction that records the failed release); the refunds engine refunds it in full and
-- fills in refund_no in the transaction that starts the refund. Shared with the releases
-- migration, hence IF NOT EXISTS: whichever lands first creates it, identically.
CREATE TABLE IF NOT EXISTS refund_marks (
    sale_id   TEXT PRIMARY KEY REFERENCES sales (id),
    reason    TEXT NOT NULL DEFAULT 'goods_not_released',
    marked_at TEXT NOT NULL,
    refund_no TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS refund_marks_pending ON refund_marks (marked_at)
    WHERE refund_no IS NULL;

-- Every evt/txn message, numbered by its own persisted sequence, with what the daily
-- settlement counts: when it happened (payment or refund success, or the void), its status,
-- the money it moved and how. The message itself stays in the outbox (delivered evt/txn rows
-- are kept for the reconciliation window), so reconciliation can resend it byte for byte.
CREATE TABLE txn_journal (
    txn_seq    INTEGER PRIMARY KEY,
    msg_id     TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    status     TEXT NOT NULL,
    at         TEXT,
    amount_fen INTEGER NOT NULL,
    method     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX txn_journal_at ON txn_journal (at);
