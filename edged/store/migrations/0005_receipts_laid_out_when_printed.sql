-- A receipt is laid out by the print worker from its committed sale, no longer inside the
-- sale's durable commit (building it there was a third of that commit's CPU time). So a paid
-- sale names the trade that paid it, and a print job may be queued without a document yet.
ALTER TABLE sales ADD COLUMN paid_trade_no TEXT;

CREATE TABLE print_jobs_rebuilt (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sale_id    TEXT,
    kind       TEXT NOT NULL,
    document   TEXT,
    state      TEXT NOT NULL DEFAULT 'queued',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    printed_at TEXT,
    CHECK (document IS NOT NULL OR sale_id IS NOT NULL)
) STRICT;
INSERT INTO print_jobs_rebuilt
    (id, sale_id, kind, document, state, attempts, last_error, created_at, printed_at)
    SELECT id, sale_id, kind, document, state, attempts, last_error, created_at, printed_at
    FROM print_jobs;
-- Job ids keep counting from where they were, even past jobs already pruned.
DELETE FROM sqlite_sequence WHERE name = 'print_jobs_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'print_jobs_rebuilt', seq FROM sqlite_sequence WHERE name = 'print_jobs';
DROP TABLE print_jobs;
ALTER TABLE print_jobs_rebuilt RENAME TO print_jobs;
CREATE INDEX print_jobs_queued ON print_jobs (id) WHERE state = 'queued';
