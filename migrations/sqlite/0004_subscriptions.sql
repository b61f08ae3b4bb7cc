-- Subscriptions (issue 5): side effects a version held back while catching up, and
-- the outbox its messages leave through after the page that queued them commits.
ALTER TABLE progress ADD COLUMN effects_held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE components ADD COLUMN kind TEXT NOT NULL DEFAULT 'projection';

CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY,
    message_id      TEXT    NOT NULL UNIQUE,  -- stable: a replay queues nothing twice
    name            TEXT    NOT NULL,         -- the subscription that queued it
    version         INTEGER NOT NULL,
    team            TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    event_sequence  INTEGER,                  -- the event being handled when queued
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,         -- microseconds since the Unix epoch
    last_error      TEXT,
    delivered_at    INTEGER,
    gave_up_at      INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE INDEX outbox_due ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Events a subscription version gave up on (its error policy is dead-letter): the
-- version moved past them; they wait here to be looked at.
CREATE TABLE dead_letters (
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    sequence    INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (name, version, sequence)
);
