-- All projections' documents in one table, keyed by a document set (one per
-- projection version) instead of one table per version: creating or dropping a
-- version is a row, not schema (with thousands of versions every CREATE TABLE made
-- each connection re-read the whole schema). The progress row names its version's
-- set (NULL for a subscription, which keeps no documents); swapping a shadow in
-- moves the progress row and with it the set. A dropped set is marked and its
-- documents purged in small batches in the background. Tables of the old layout
-- (doc_<name>_v<version>) are moved in by the store when it opens.
CREATE TABLE doc_sets (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a new set starts empty
    dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX doc_sets_dropped ON doc_sets (id) WHERE dropped = 1;

CREATE TABLE documents (
    set_id      INTEGER NOT NULL,
    id          TEXT    NOT NULL,
    size        INTEGER NOT NULL,  -- bytes of body: loads and purges are budgeted
    updated_seq INTEGER NOT NULL,
    -- Last: reading the columns before it never walks a large body's overflow pages.
    body        TEXT    NOT NULL,
    PRIMARY KEY (set_id, id)
) WITHOUT ROWID;

ALTER TABLE progress ADD COLUMN doc_set INTEGER REFERENCES doc_sets (id);
