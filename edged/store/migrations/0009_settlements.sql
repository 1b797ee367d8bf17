-- The daily settlement: one row per business day, its latest revision and where its
-- reconciliation with the backend stands (pending, resending, reconciled, mismatch).
CREATE TABLE settlements (
    business_day TEXT PRIMARY KEY,
    revision     INTEGER NOT NULL CHECK (revision >= 1),
    body         TEXT NOT NULL,
    msg_id       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    recon_state  TEXT NOT NULL DEFAULT 'pending',
    recon_round  INTEGER NOT NULL DEFAULT 0,
    recon_detail TEXT NOT NULL DEFAULT '[]'
) STRICT;
