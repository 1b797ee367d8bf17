-- A release may also come from an operations request (`op.door.unlock`: staff open a door or
-- slot remotely): `request_id` names it, and a release belongs to exactly one of a sale, an
-- order or a request, at most one release each. SQLite cannot change a CHECK in place, so the
-- table is rebuilt: create the new one, copy every row (ids kept), drop, rename, re-index.
CREATE TABLE releases_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sale_id      TEXT REFERENCES sales (id),
    order_id     TEXT,
    request_id   TEXT,
    slot         INTEGER NOT NULL CHECK (slot >= 1),
    state        TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    paid_at      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    unlocked_at  TEXT,
    opened_at    TEXT,
    ended_at     TEXT,
    CHECK ((sale_id IS NOT NULL) + (order_id IS NOT NULL) + (request_id IS NOT NULL) = 1)
) STRICT;
INSERT INTO releases_new (id, sale_id, order_id, request_id, slot, state, reason, paid_at,
                          created_at, updated_at, unlocked_at, opened_at, ended_at)
SELECT id, sale_id, order_id, NULL, slot, state, reason, paid_at,
       created_at, updated_at, unlocked_at, opened_at, ended_at
FROM releases;
-- Keep AUTOINCREMENT's high-water mark, so an id is never given twice (pruned rows included).
INSERT INTO sqlite_sequence (name, seq)
SELECT 'releases_new', seq FROM sqlite_sequence WHERE name = 'releases'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'releases_new');
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'releases'), 0))
WHERE name = 'releases_new';
DROP TABLE releases;
ALTER TABLE releases_new RENAME TO releases;
CREATE UNIQUE INDEX releases_one_per_sale ON releases (sale_id) WHERE sale_id IS NOT NULL;
CREATE UNIQUE INDEX releases_one_per_order ON releases (order_id) WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX releases_one_per_request ON releases (request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX releases_active ON releases (state) WHERE ended_at IS NULL;
