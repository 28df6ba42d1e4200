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
