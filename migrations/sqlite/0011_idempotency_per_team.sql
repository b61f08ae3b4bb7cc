-- Idempotency keys belong to the team that appended (issue 11): another team's use
-- of the same key neither blocks nor answers an append, and a reused key names only
-- the team's own stream. Keys recorded before teams scoped them go to the implicit
-- team `default` (a single-team daemon behaves as before).
CREATE TABLE idempotency_keys_by_team (
    team            TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    first_sequence  INTEGER NOT NULL,
    last_sequence   INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (team, key)
) WITHOUT ROWID;

INSERT INTO idempotency_keys_by_team
    (team, key, stream_id, stream_version, first_sequence, last_sequence, created_at)
SELECT 'default', key, stream_id, stream_version, first_sequence, last_sequence, created_at
FROM idempotency_keys;

DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_team RENAME TO idempotency_keys;
