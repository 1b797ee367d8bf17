-- Operations commands (cmd/op): one row per request id, committed with each reply it sends,
-- so a command sent again under the same request id gets the stored outcome, not a rerun.
CREATE TABLE op_requests (
    request_id  TEXT PRIMARY KEY,
    op          TEXT NOT NULL,
    msg_id      TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL DEFAULT '{}',
    body        TEXT NOT NULL,
    reply_topic TEXT NOT NULL,
    correlation BLOB,
    expires_at  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX op_requests_open ON op_requests (state) WHERE state IN ('accepted', 'in_progress');
