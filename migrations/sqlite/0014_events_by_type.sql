-- Inline appends ask, under the write lock, whether events of a version's types lie
-- between its position and the append: a range probe per type, not a scan.
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, seq);
