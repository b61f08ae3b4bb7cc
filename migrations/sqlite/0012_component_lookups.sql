-- Registry lookups by team (a team's listing and its component count) and by code
-- (whether any version still runs a wasm file) use an index, not a scan.
CREATE INDEX components_by_team ON components (team);
CREATE INDEX components_by_code ON components (sha256);
