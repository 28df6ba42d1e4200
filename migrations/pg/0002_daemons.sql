-- The PostgreSQL catalogue, version 2: who works each job, daemon leases and account signals,
-- the same change as SQLite's version 10 (migrations/0010_daemons.sql, where each is explained).
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN origin TEXT;
CREATE INDEX jobs_unfinished_by_owner ON jobs (owner, state)
    WHERE state NOT IN ('archived', 'archived_with_warnings', 'failed');

CREATE TABLE daemons (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL
);

CREATE TABLE account_signals (
    kind   TEXT NOT NULL CHECK (kind IN ('pause', 'model_cap')),
    model  TEXT NOT NULL,
    value  BIGINT NOT NULL,
    code   TEXT NOT NULL,
    reason TEXT NOT NULL,
    until  BIGINT NOT NULL,
    PRIMARY KEY (kind, model)
);
