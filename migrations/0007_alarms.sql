-- Schema version 7: expiry awareness and the notification outbox.
--
-- `expires_at` is when a result's links stop working (unix ms): one day after the task
-- succeeded unless the platform gave an expiry. It is written once, when the result is first
-- seen; a restart, a reconcile or fresh links from a refresh never move it (fresh links carry a
-- new expiry only when the platform names one). Rows from before this version get result_at + 1 day.
ALTER TABLE jobs ADD COLUMN expires_at INTEGER;
UPDATE jobs SET expires_at = result_at + 86400000 WHERE result_at IS NOT NULL;
CREATE INDEX jobs_downloading_by_expiry ON jobs (expires_at, created_at) WHERE state = 'downloading';

-- A paid result that expired before it was archived has its own code: `result-expired`
-- (vidkeep up to 0.6 wrote `expired`).
UPDATE jobs SET error_code = 'result-expired' WHERE error_code = 'expired';
UPDATE submissions SET error_code = 'result-expired' WHERE error_code = 'expired';

-- The outbox: one row per notification event and sink, written in the same transaction as the
-- state change that causes it, delivered later by the notifier with backoff. `dedupe` keeps
-- one-off events (an expiry warning per job, a budget reached per period) from repeating.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sink            TEXT NOT NULL CHECK (sink IN ('webhook', 'command')),
    event           TEXT NOT NULL,
    job_id          TEXT,
    body            TEXT NOT NULL,
    dedupe          TEXT,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE UNIQUE INDEX outbox_dedupe ON outbox (sink, dedupe) WHERE dedupe IS NOT NULL;
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE status = 'pending';
