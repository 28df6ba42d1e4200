-- Schema version 4: the spend ledger and the `waiting_budget` state.
--
-- Each submission row carries the price it was started at (fen, written before the POST), so
-- later [prices] changes never rewrite history. The `ledger` view names each row's money
-- outcome: `charged` (the platform returned a task id), `possibly-charged` (the answer was lost
-- or the POST is still in flight), `not-charged` (refused with a business code, or never sent).
--
-- SQLite cannot change a CHECK constraint in place: `jobs` is rebuilt (same rowids, so the
-- search index stays valid) with `waiting_budget` among its states; its indexes and triggers
-- (search index, tag table) are made again as 0001-0003 made them. The migration runs with
-- foreign keys off and is checked with foreign_key_check before it commits.

ALTER TABLE submissions ADD COLUMN price_fen INTEGER NOT NULL DEFAULT 0;
UPDATE submissions SET price_fen = (SELECT price_fen FROM jobs WHERE jobs.id = submissions.job_id);

CREATE TABLE jobs_v4 (
    id              TEXT PRIMARY KEY,
    spec_name       TEXT NOT NULL,
    spec_file       TEXT NOT NULL,
    spec_place      TEXT NOT NULL CHECK (spec_place IN ('inbox', 'processing', 'done', 'failed')),
    spec_sha256     TEXT NOT NULL,
    spec_format     TEXT NOT NULL CHECK (spec_format IN ('json', 'toml', 'text')),
    fingerprint     TEXT NOT NULL,
    model           TEXT NOT NULL,
    prompt          TEXT,
    name            TEXT,
    project         TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    request_display TEXT NOT NULL,
    price_fen       INTEGER NOT NULL,               -- price of the latest (or next) submission, fen
    state           TEXT NOT NULL CHECK (state IN
                        ('queued', 'submitting', 'submitted', 'downloading', 'archived', 'archived_with_warnings', 'failed', 'uncertain',
                         'waiting_budget')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    request_id      TEXT,
    task_id         TEXT,
    video_url       TEXT,
    cover_url       TEXT,
    result_json     TEXT,
    error_code      TEXT,                           -- for waiting_budget: 'budget', with the reason as message
    error_message   TEXT,
    created_at      INTEGER NOT NULL,
    submitted_at    INTEGER,
    result_at       INTEGER,
    archived_at     INTEGER,
    finished_at     INTEGER,
    updated_at      INTEGER NOT NULL,
    CHECK (state NOT IN ('submitted', 'downloading', 'archived', 'archived_with_warnings') OR task_id IS NOT NULL),
    CHECK (state NOT IN ('downloading', 'archived', 'archived_with_warnings') OR video_url IS NOT NULL),
    CHECK (state NOT IN ('archived', 'archived_with_warnings') OR archived_at IS NOT NULL),
    CHECK (state NOT IN ('failed', 'uncertain', 'waiting_budget') OR error_code IS NOT NULL)
);
INSERT INTO jobs_v4 (rowid, id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model,
    prompt, name, project, tags, request_display, price_fen, state, attempts, next_attempt_at, request_id,
    task_id, video_url, cover_url, result_json, error_code, error_message, created_at, submitted_at, result_at,
    archived_at, finished_at, updated_at)
SELECT rowid, id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model,
    prompt, name, project, tags, request_display, price_fen, state, attempts, next_attempt_at, request_id,
    task_id, video_url, cover_url, result_json, error_code, error_message, created_at, submitted_at, result_at,
    archived_at, finished_at, updated_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v4 RENAME TO jobs;

CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);
CREATE INDEX jobs_by_created ON jobs (created_at);
CREATE INDEX jobs_by_fingerprint ON jobs (fingerprint);
CREATE INDEX jobs_by_project ON jobs (project, created_at);
CREATE INDEX jobs_by_model ON jobs (model, created_at);
CREATE INDEX jobs_by_updated ON jobs (updated_at);

CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_fts (rowid, prompt, name, project, tags)
    VALUES (new.rowid, new.prompt, new.name, new.project, new.tags);
END;

CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN
    INSERT INTO jobs_fts (jobs_fts, rowid, prompt, name, project, tags)
    VALUES ('delete', old.rowid, old.prompt, old.name, old.project, old.tags);
END;

CREATE TRIGGER jobs_fts_update AFTER UPDATE OF prompt, name, project, tags ON jobs BEGIN
    INSERT INTO jobs_fts (jobs_fts, rowid, prompt, name, project, tags)
    VALUES ('delete', old.rowid, old.prompt, old.name, old.project, old.tags);
    INSERT INTO jobs_fts (rowid, prompt, name, project, tags)
    VALUES (new.rowid, new.prompt, new.name, new.project, new.tags);
END;

CREATE TRIGGER job_tags_insert AFTER INSERT ON jobs BEGIN
    INSERT OR IGNORE INTO job_tags (tag, job_id) SELECT value, new.id FROM json_each(new.tags);
END;

CREATE TRIGGER job_tags_update AFTER UPDATE OF tags ON jobs BEGIN
    DELETE FROM job_tags WHERE job_id = old.id;
    INSERT OR IGNORE INTO job_tags (tag, job_id) SELECT value, new.id FROM json_each(new.tags);
END;

CREATE TRIGGER job_tags_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_tags WHERE job_id = old.id;
END;

CREATE VIEW ledger AS
SELECT s.id, s.job_id, s.request_id, s.started_at, s.finished_at, s.task_id, s.error_code, s.price_fen,
       j.spec_name, j.model, j.project,
       CASE s.outcome WHEN 'accepted' THEN 'charged'
                      WHEN 'refused' THEN 'not-charged'
                      ELSE 'possibly-charged' END AS money
FROM submissions s JOIN jobs j ON j.id = s.job_id;
