-- vidkeep catalogue: the media probe's figures for each video asset, and what in them did not
-- match the model's promise. NULL figures: the file did not parse (the finding says why), or the
-- asset was stored before the probe existed (then probe_findings is NULL too).

ALTER TABLE assets ADD COLUMN probe_duration_s REAL;
ALTER TABLE assets ADD COLUMN probe_fps REAL;
ALTER TABLE assets ADD COLUMN probe_width INTEGER;
ALTER TABLE assets ADD COLUMN probe_height INTEGER;
ALTER TABLE assets ADD COLUMN probe_codec TEXT;
ALTER TABLE assets ADD COLUMN probe_findings TEXT;          -- JSON array of strings; '[]' = as promised

-- Provenance: the input images of each job's request, kept once in storage by their SHA-256
-- (`inputs/<sha256>.<ext>`); a remote image URL is recorded as sent (vidkeep never read it).
CREATE TABLE job_inputs (
    job_id       TEXT NOT NULL REFERENCES jobs (id),
    idx          INTEGER NOT NULL,                  -- position in the request's image_url
    sha256       TEXT,                              -- NULL for a remote URL
    key          TEXT,                              -- storage key, NULL for a remote URL
    bytes        INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    url          TEXT,                              -- the remote URL, NULL for an inline image
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX job_inputs_by_sha256 ON job_inputs (sha256);
