-- vidkeep catalogue, schema version 1. Never edit a released migration: add a new numbered file.

-- One row per accepted spec: the durable job state machine.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,               -- UUID v7: time-ordered, stable across catalogues
    spec_name       TEXT NOT NULL,                  -- the file name as dropped into the inbox
    spec_file       TEXT NOT NULL,                  -- its current name in spec_place (renamed on clashes)
    spec_place      TEXT NOT NULL CHECK (spec_place IN ('inbox', 'processing', 'done', 'failed')),
    spec_sha256     TEXT NOT NULL,                  -- hash of the spec file's bytes
    spec_format     TEXT NOT NULL CHECK (spec_format IN ('json', 'toml', 'text')),
    fingerprint     TEXT NOT NULL,                  -- hash of the canonical request body (same spec => same fingerprint)
    model           TEXT NOT NULL,
    prompt          TEXT,
    name            TEXT,
    project         TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',     -- JSON array of strings
    request_display TEXT NOT NULL,                  -- JSON request with images shown as their source
    price_fen       INTEGER NOT NULL,               -- list price of one submission, 0.01 CNY
    state           TEXT NOT NULL CHECK (state IN
                        ('queued', 'submitting', 'submitted', 'downloading', 'archived', 'failed', 'uncertain')),
    attempts        INTEGER NOT NULL DEFAULT 0,     -- submissions started (each one possibly paid)
    next_attempt_at INTEGER NOT NULL DEFAULT 0,     -- unix ms; a queued job is not submitted before this
    request_id      TEXT,                           -- request_id of the latest submission
    task_id         TEXT,                           -- the platform's task id once accepted
    video_url       TEXT,
    cover_url       TEXT,
    result_json     TEXT,                           -- the platform's final answer, verbatim
    error_code      TEXT,                           -- stable kebab-case code, or the platform's business code
    error_message   TEXT,                           -- words a person can act on
    created_at      INTEGER NOT NULL,
    submitted_at    INTEGER,
    result_at       INTEGER,                        -- when SUCCESS was seen: the result URLs expire a day later
    archived_at     INTEGER,
    finished_at     INTEGER,                        -- when the job reached a terminal state
    updated_at      INTEGER NOT NULL,
    CHECK (state NOT IN ('submitted', 'downloading', 'archived') OR task_id IS NOT NULL),
    CHECK (state NOT IN ('downloading', 'archived') OR video_url IS NOT NULL),
    CHECK (state <> 'archived' OR archived_at IS NOT NULL),
    CHECK (state NOT IN ('failed', 'uncertain') OR error_code IS NOT NULL)
);
CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);
CREATE INDEX jobs_by_created ON jobs (created_at);
CREATE INDEX jobs_by_fingerprint ON jobs (fingerprint);

-- The exact body sent to the platform (images inlined), kept apart so listings never read it.
CREATE TABLE job_requests (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    body   TEXT NOT NULL
);

-- Every submission, recorded as 'pending' before the POST is sent: the spend ledger's source.
CREATE TABLE submissions (
    id          INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    request_id  TEXT NOT NULL UNIQUE,
    started_at  INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'accepted', 'refused', 'uncertain')),
    task_id     TEXT,
    error_code  TEXT,
    finished_at INTEGER
);
CREATE INDEX submissions_by_job ON submissions (job_id);

-- Archived objects, recorded only after the object is stored under its final key.
CREATE TABLE assets (
    job_id       TEXT NOT NULL REFERENCES jobs (id),
    kind         TEXT NOT NULL CHECK (kind IN ('video', 'cover')),
    key          TEXT NOT NULL UNIQUE,              -- path relative to the storage root
    sha256       TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    source_url   TEXT NOT NULL,
    stored_at    INTEGER NOT NULL,
    PRIMARY KEY (job_id, kind)
);
CREATE INDEX assets_by_sha256 ON assets (sha256);

-- Append-only audit trail of state changes.
CREATE TABLE job_events (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs (id),
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    note       TEXT
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);

-- Spec files refused before they became jobs (never submitted).
CREATE TABLE rejections (
    id            INTEGER PRIMARY KEY,
    spec_name     TEXT NOT NULL,
    spec_sha256   TEXT NOT NULL,
    error_code    TEXT NOT NULL,
    error_message TEXT NOT NULL,
    at            INTEGER NOT NULL
);
