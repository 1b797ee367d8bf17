-- One row per daemon start: fleet operations count restarts and unclean shutdowns.
CREATE TABLE boots (
    boot_id      TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL UNIQUE,
    version      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    stopped_at   TEXT
) STRICT;
