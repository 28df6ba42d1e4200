-- vidkeep catalogue, schema version 10: who works each job, for catalogues several daemons share
-- (issue 12). The same change is PostgreSQL's version 2 (migrations/pg/0002_daemons.sql).
--
-- owner:  the daemon working the job now (its id, `<host>-<inbox hash>`). A daemon reads only its
--         own jobs; when its lease runs out, another takes over its submitted and downloading
--         jobs (their results expire a day after they are ready) and makes its submitting ones
--         uncertain (never submitted again by itself).
-- origin: the daemon whose inbox the spec came from: only it can move the spec file to done/
--         or failed/, even when another daemon archived the results.
-- NULL in both: a job recorded before version 10; the first daemon to start adopts it.
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN origin TEXT;
CREATE INDEX jobs_unfinished_by_owner ON jobs (owner, state)
    WHERE state NOT IN ('archived', 'archived_with_warnings', 'failed');

-- One row per daemon that ever opened the catalogue for work: its lease, renewed by heartbeat.
CREATE TABLE daemons (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL
);

-- What the platform said about the whole account, so every daemon on it heeds it: a pause
-- (a business code that stops all submissions, like an unpaid balance) or a model's lowered
-- in-flight cap after 1302 ("too many requests"). Rows past `until` no longer count.
CREATE TABLE account_signals (
    kind   TEXT NOT NULL CHECK (kind IN ('pause', 'model_cap')),
    model  TEXT NOT NULL,                       -- '' for the pause
    value  INTEGER NOT NULL,                    -- the cap; 0 for the pause
    code   TEXT NOT NULL,                       -- the platform's code or vidkeep's
    reason TEXT NOT NULL,
    until  INTEGER NOT NULL,                    -- unix ms
    PRIMARY KEY (kind, model)
);
