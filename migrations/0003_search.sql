-- vidkeep catalogue, schema version 3: full-text search over what people remember of a clip.
-- The trigram tokenizer matches any substring of three or more characters, in any script:
-- prompts on this platform are often Chinese, written without spaces, which a word tokenizer
-- would index as one token per sentence. Shorter terms are matched with LIKE by the query.

CREATE VIRTUAL TABLE jobs_fts USING fts5(
    prompt, name, project, tags,
    content = 'jobs', content_rowid = 'rowid', tokenize = 'trigram'
);

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

-- Jobs that existed before this migration.
INSERT INTO jobs_fts (jobs_fts) VALUES ('rebuild');

CREATE INDEX jobs_by_project ON jobs (project, created_at);
CREATE INDEX jobs_by_model ON jobs (model, created_at);
-- /metrics and the systemd status sum today's spend from the ledger, which only grows.
CREATE INDEX submissions_by_start ON submissions (started_at);
-- Pages poll MAX(updated_at) to notice changes.
CREATE INDEX jobs_by_updated ON jobs (updated_at);

-- Tags as rows, kept from jobs.tags (a JSON array) by triggers, so the tag filter and the list
-- of tags in use read an index instead of parsing every job's JSON.
CREATE TABLE job_tags (
    tag    TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES jobs (id),
    PRIMARY KEY (tag, job_id)
) WITHOUT ROWID;
CREATE INDEX job_tags_by_job ON job_tags (job_id);

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

INSERT OR IGNORE INTO job_tags (tag, job_id) SELECT json_each.value, jobs.id FROM jobs, json_each(jobs.tags);
