-- A version deployed with auto_promote becomes live by itself once it has caught up.
ALTER TABLE components ADD COLUMN auto_promote INTEGER NOT NULL DEFAULT 0;
