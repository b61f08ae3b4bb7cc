-- refract on PostgreSQL: the whole schema of the SQLite backend's migrations
-- 0001-0013, in one step, plus the gap-safe global order.
--
-- The order problem: an identity column hands out positions when rows are
-- inserted, but transactions commit in another order, so a reader that follows
-- `position > cursor` can pass a position whose transaction commits later, and
-- never see that event. Here every event also records the id of the transaction
-- that wrote it (`transaction_id`), and nothing reads the events table in
-- position order. One sequencer (any node; one at a time, by the lock on its
-- row) reads behind the transaction fence -- `(transaction_id, position) > its
-- cursor AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`, in
-- `(transaction_id, position)` order: every transaction below the snapshot's xmin
-- has ended, so nothing can still appear below the fence -- and gives those
-- events the next numbers of a dense global sequence (`log`). Consumers read the
-- log by sequence: numbers that only grow in the order events are delivered, with
-- no gap (a rolled-back transaction burns positions, never sequences).

CREATE TABLE events (
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id XID8   NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      TEXT   NOT NULL,
    stream_version BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    data           TEXT   NOT NULL,
    metadata       TEXT   NOT NULL,
    tenant         TEXT,
    created_at     BIGINT NOT NULL,       -- microseconds since the Unix epoch
    UNIQUE (stream_id, stream_version)    -- the expected-version check's last word
);
CREATE INDEX events_fence_order ON events (transaction_id, position);

-- The global order: sequence -> event, dense, assigned behind the fence. The
-- type is copied so a consumer of a few types scans the log, not the events (and
-- the time, for the rare "where did time T start" of a new subscription).
CREATE TABLE log (
    seq        BIGINT PRIMARY KEY,
    position   BIGINT NOT NULL UNIQUE,  -- no foreign key: its check would lock each event row
    event_type TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- The sequencer's own progress: the cursor pair of the last event it ordered and
-- the last sequence it gave out. One row; its lock makes one sequencer at a time.
CREATE TABLE sequencer (
    id             INT    PRIMARY KEY CHECK (id = 1),
    transaction_id XID8   NOT NULL,
    position       BIGINT NOT NULL,
    seq            BIGINT NOT NULL
);
INSERT INTO sequencer (id, transaction_id, position, seq) VALUES (1, '0', 0, 0);

CREATE TABLE streams (
    stream_id TEXT   PRIMARY KEY,
    version   BIGINT NOT NULL
);

-- An append's result is kept by its positions: its sequences may not be given
-- out yet when it commits.
CREATE TABLE idempotency_keys (
    team           TEXT   NOT NULL,
    key            TEXT   NOT NULL,
    stream_id      TEXT   NOT NULL,
    stream_version BIGINT NOT NULL,
    first_position BIGINT NOT NULL,
    last_position  BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (team, key)
);

CREATE TABLE components (
    name         TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    team         TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    event_types  TEXT    NOT NULL,        -- JSON array
    state        TEXT    NOT NULL,
    deployed_at  BIGINT  NOT NULL,
    auto_promote BOOLEAN NOT NULL DEFAULT FALSE,
    kind         TEXT    NOT NULL DEFAULT 'projection',
    PRIMARY KEY (name, version)
);
CREATE INDEX components_by_team ON components (team);
CREATE INDEX components_by_code ON components (sha256);

-- One document set per projection version (see the SQLite migration 0013): a
-- deploy or a drop is a row, not schema; dropped sets are purged in batches.
CREATE TABLE doc_sets (
    id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused
    dropped BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX doc_sets_dropped ON doc_sets (id) WHERE dropped;

CREATE TABLE documents (
    set_id      BIGINT NOT NULL,
    -- Bytes order, as on SQLite (listings page by id whatever the database's
    -- collation, and a prefix is one range of the key).
    id          TEXT   COLLATE "C" NOT NULL,
    size        BIGINT NOT NULL,          -- bytes of body: loads and purges are budgeted
    updated_seq BIGINT NOT NULL,
    -- JSON, not JSONB: checked and queryable (`body->>'field'`, or cast to jsonb
    -- for an index) yet kept as written, so a document reads back byte for byte
    -- and a tiny text cannot grow when read (`[1e131071]` is 131,074 bytes as
    -- jsonb text), and no JSON the guest may write is refused at commit.
    body        JSON   NOT NULL,
    PRIMARY KEY (set_id, id)
);

CREATE TABLE progress (
    name           TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    position       BIGINT NOT NULL DEFAULT 0,   -- a sequence of the log
    events_applied BIGINT NOT NULL DEFAULT 0,
    events_skipped BIGINT NOT NULL DEFAULT 0,
    effects_held   BIGINT NOT NULL DEFAULT 0,
    status         TEXT   NOT NULL DEFAULT 'running',
    error          TEXT,
    updated_at     BIGINT NOT NULL,
    doc_set        BIGINT REFERENCES doc_sets (id),
    PRIMARY KEY (name, version)
);

CREATE TABLE effects_high_water (
    name     TEXT   NOT NULL,
    version  BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT   NOT NULL UNIQUE,  -- stable: a replay queues nothing twice
    name            TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    team            TEXT   NOT NULL,
    url             TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    event_sequence  BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

CREATE TABLE dead_letters (
    name       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    sequence   BIGINT NOT NULL,
    error      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version, sequence)
);
