-- Remote config (cfg at fleet, site and device scope). `config_layers` holds the newest
-- desired layer seen per scope, valid or not (a rejected or rolled-back one is `valid = 0` and
-- never enters a candidate); `config_state` is the one row that says which
-- layers the running config is made of and where a change stands, so a crash at any step
-- (staged, applying inside its health gate) ends in a known state at the next start.
CREATE TABLE config_layers (
    scope       TEXT PRIMARY KEY CHECK (scope IN ('fleet', 'site', 'device')),
    version     INTEGER NOT NULL CHECK (version >= 1),
    layer       TEXT NOT NULL,
    grace_s     INTEGER,
    msg_id      TEXT NOT NULL,
    valid       INTEGER NOT NULL,
    received_at TEXT NOT NULL
) STRICT;

CREATE TABLE config_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    committed      TEXT NOT NULL,
    candidate      TEXT,
    phase          TEXT NOT NULL CHECK (phase IN ('committed', 'staged', 'applying')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    grace_s        INTEGER,
    applying_since TEXT,
    devices_before TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL,
    scope          TEXT,
    version        INTEGER,
    error_key      TEXT,
    error_message  TEXT,
    note           TEXT NOT NULL DEFAULT '',
    updated_at     TEXT NOT NULL
) STRICT;
INSERT INTO config_state (id, committed, phase, status, updated_at)
VALUES (1, '{}', 'committed', 'applied', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
