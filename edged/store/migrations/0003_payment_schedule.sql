-- The payment engine's schedule: when it next queries, reverses or closes, and how often it did.
ALTER TABLE payments ADD COLUMN next_at TEXT;
ALTER TABLE payments ADD COLUMN reverse_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN stage_started_at TEXT;
ALTER TABLE payments ADD COLUMN transaction_id TEXT NOT NULL DEFAULT '';
CREATE INDEX payments_due ON payments (next_at) WHERE next_at IS NOT NULL;
