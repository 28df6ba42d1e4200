-- vidkeep catalogue, schema version 2: every re-read of a stored asset is recorded, so silent
-- corruption is found and dated, and the scrubber can visit the least recently checked first.

CREATE TABLE asset_checks (
    id      INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL REFERENCES jobs (id),
    key     TEXT NOT NULL,                      -- the asset's key when it was checked
    at      INTEGER NOT NULL,                   -- unix ms
    result  TEXT NOT NULL CHECK (result IN ('ok', 'missing', 'mismatch', 'unreadable')),
    detail  TEXT                                -- what was found instead, in words
);
CREATE INDEX asset_checks_by_key ON asset_checks (key, at);

-- The latest check, kept on the asset for listings and for choosing what to check next.
ALTER TABLE assets ADD COLUMN checked_at INTEGER;
ALTER TABLE assets ADD COLUMN check_result TEXT;
