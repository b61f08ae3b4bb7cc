-- refract on SQLite: events, streams, idempotency keys, the component registry and
-- projection progress. Each projection version's documents live in their own table
-- (doc_<name>_v<version>), created at deploy time.

CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,   -- rowid: one writer, so commits land in order
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    tenant         TEXT,
    created_at     INTEGER NOT NULL,      -- microseconds since the Unix epoch
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    key             TEXT PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    first_sequence  INTEGER NOT NULL,
    last_sequence   INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE components (
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    team        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    event_types TEXT    NOT NULL,        -- JSON array
    state       TEXT    NOT NULL,
    deployed_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE progress (
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    position       INTEGER NOT NULL DEFAULT 0,
    events_applied INTEGER NOT NULL DEFAULT 0,
    status         TEXT    NOT NULL DEFAULT 'running',
    error          TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
