-- Numbered migrations run at start, each in its own transaction.
CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE products (
    barcode       TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    price_fen     INTEGER NOT NULL CHECK (price_fen >= 0),
    active        INTEGER NOT NULL DEFAULT 1,
    price_version INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE stock (
    barcode  TEXT PRIMARY KEY REFERENCES products (barcode),
    quantity INTEGER NOT NULL,
    version  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE sales (
    id           TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL UNIQUE,
    state        TEXT NOT NULL,
    total_fen    INTEGER NOT NULL DEFAULT 0 CHECK (total_fen >= 0),
    created_at   TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    completed_at TEXT
) STRICT;

CREATE TABLE sale_lines (
    sale_id        TEXT NOT NULL REFERENCES sales (id),
    line_no        INTEGER NOT NULL,
    barcode        TEXT NOT NULL,
    name           TEXT NOT NULL,
    unit_price_fen INTEGER NOT NULL CHECK (unit_price_fen >= 0),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    voided         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sale_id, line_no)
) STRICT;

CREATE TABLE payments (
    trade_no     TEXT PRIMARY KEY,
    sale_id      TEXT NOT NULL REFERENCES sales (id),
    method       TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    state        TEXT NOT NULL,
    deadline_at  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    detail       TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE INDEX payments_open ON payments (state);

CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id       TEXT NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    qos          INTEGER NOT NULL,
    retain       INTEGER NOT NULL,
    payload      BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    delivered_at TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox (priority, seq) WHERE delivered_at IS NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;

CREATE TABLE inbox (
    msg_id      TEXT PRIMARY KEY,
    topic       TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;

CREATE TABLE print_jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sale_id    TEXT,
    kind       TEXT NOT NULL,
    document   TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'queued',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    printed_at TEXT
) STRICT;
CREATE INDEX print_jobs_queued ON print_jobs (id) WHERE state = 'queued';

CREATE TABLE config_versions (
    version    INTEGER PRIMARY KEY,
    scope      TEXT NOT NULL,
    status     TEXT NOT NULL,
    document   TEXT NOT NULL,
    error      TEXT,
    applied_at TEXT NOT NULL
) STRICT;
