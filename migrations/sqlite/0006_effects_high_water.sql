-- Subscriptions (issue 10): the furthest position each subscription version ever
-- committed. It survives rewinds, rebuilds and same-version reloads (which reset the
-- progress row, not this one): every event at or below it handles with side effects
-- held, so an emit without an idempotency key never fires twice. A rewind asked with
-- `?effects=replay` lowers it to the rewind target.
CREATE TABLE effects_high_water (
    name     TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

-- Versions that ran before this migration: their committed progress is the best
-- known mark.
INSERT INTO effects_high_water (name, version, position)
SELECT p.name, p.version, p.position FROM progress p
JOIN components c ON c.name = p.name AND c.version = p.version
WHERE c.kind = 'subscription';
