-- vidkeep catalogue, schema version 11: a tag's jobs in the listing's order (issue 14). The same
-- change is PostgreSQL's version 3 (migrations/pg/0003_tag_order.sql).
--
-- Measured at 1,000,000 jobs: the filter menus of a tag a tenth of all jobs carry count that
-- tag's newest 10,000 jobs, and `job_tags (tag, job_id)` has no time order, so they were found by
-- walking the creation-time index and checking each job (~100,000 rows, 150 ms of a 139-218 ms
-- page). With the job's creation time beside each tag, the newest jobs of a tag are the start of
-- one index. The copy follows the job's: a change of either its tags or its creation time
-- (which vidkeep itself never makes) rewrites the job's tag rows.
ALTER TABLE job_tags ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
UPDATE job_tags SET created_at = (SELECT jobs.created_at FROM jobs WHERE jobs.id = job_tags.job_id);
CREATE INDEX job_tags_newest ON job_tags (tag, created_at DESC, job_id DESC);

DROP TRIGGER job_tags_insert;
DROP TRIGGER job_tags_update;

CREATE TRIGGER job_tags_insert AFTER INSERT ON jobs BEGIN
    INSERT OR IGNORE INTO job_tags (tag, job_id, created_at) SELECT value, new.id, new.created_at FROM json_each(new.tags);
END;

CREATE TRIGGER job_tags_update AFTER UPDATE OF tags, created_at ON jobs BEGIN
    DELETE FROM job_tags WHERE job_id = old.id;
    INSERT OR IGNORE INTO job_tags (tag, job_id, created_at) SELECT value, new.id, new.created_at FROM json_each(new.tags);
END;
