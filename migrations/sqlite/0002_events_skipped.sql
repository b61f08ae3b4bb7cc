-- Events of types a projection version does not declare, passed over while it
-- advanced (an older version skipping event types introduced after it).
ALTER TABLE progress ADD COLUMN events_skipped INTEGER NOT NULL DEFAULT 0;
