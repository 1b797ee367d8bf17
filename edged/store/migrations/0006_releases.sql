-- Goods leave only against a committed fact: a release (a sale's door, an order's slot) is a
-- row committed before the relay is energised, at most one per sale and one per order.
-- pending -> unlocked -> opened -> closed, or not_opened, left_open (then closed), failed.
-- ended_at is set when the release is over (so a lock pulsed without a door sensor ends
-- `unlocked`).
CREATE TABLE releases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sale_id      TEXT REFERENCES sales (id),
    order_id     TEXT,
    slot         INTEGER NOT NULL CHECK (slot >= 1),
    state        TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    paid_at      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    unlocked_at  TEXT,
    opened_at    TEXT,
    ended_at     TEXT,
    CHECK ((sale_id IS NULL) <> (order_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX releases_one_per_sale ON releases (sale_id) WHERE sale_id IS NOT NULL;
CREATE UNIQUE INDEX releases_one_per_order ON releases (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX releases_active ON releases (state) WHERE ended_at IS NULL;

-- A paid sale whose goods were not released is marked here, in the transaction that records
-- the failed release; the refunds service refunds it and fills in refund_no. Shared with the
-- refunds migration, hence IF NOT EXISTS: whichever lands first creates it, identically.
CREATE TABLE IF NOT EXISTS refund_marks (
    sale_id   TEXT PRIMARY KEY REFERENCES sales (id),
    reason    TEXT NOT NULL DEFAULT 'goods_not_released',
    marked_at TEXT NOT NULL,
    refund_no TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS refund_marks_pending ON refund_marks (marked_at)
    WHERE refund_no IS NULL;
