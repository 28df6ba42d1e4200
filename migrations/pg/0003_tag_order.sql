-- The PostgreSQL catalogue, version 3: a tag's jobs in the listing's order, the same change as
-- SQLite's version 11 (migrations/0011_tag_order.sql, where it is explained).
ALTER TABLE job_tags ADD COLUMN created_at BIGINT;
UPDATE job_tags SET created_at = jobs.created_at FROM jobs WHERE jobs.id = job_tags.job_id;
ALTER TABLE job_tags ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX job_tags_newest ON job_tags (tag, created_at DESC, job_id DESC);

CREATE OR REPLACE FUNCTION vidkeep_job_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM job_tags WHERE job_id = OLD.id;
    END IF;
    INSERT INTO job_tags (tag, job_id, created_at)
        SELECT DISTINCT value, NEW.id, NEW.created_at FROM jsonb_array_elements_text(NEW.tags::jsonb) AS value
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
DROP TRIGGER job_tags_update ON jobs;
CREATE TRIGGER job_tags_update AFTER UPDATE OF tags, created_at ON jobs FOR EACH ROW EXECUTE FUNCTION vidkeep_job_tags();
