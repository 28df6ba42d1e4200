-- Intake looks up the spec files that sit in the inbox or processing/ (at start, to find a file a
-- stop left in processing/ with no job); a partial index keeps that independent of the archive's size.
CREATE INDEX IF NOT EXISTS jobs_spec_unsettled ON jobs (spec_place, spec_file) WHERE spec_place IN ('inbox', 'processing');

-- Takes: one spec that asks for several results (`vidkeep.takes = 3`) makes one job per take,
-- grouped by the first take's id; a single job has no group and take number 1.
ALTER TABLE jobs ADD COLUMN take_group TEXT;
ALTER TABLE jobs ADD COLUMN take_no INTEGER NOT NULL DEFAULT 1;
CREATE INDEX jobs_by_take_group ON jobs (take_group) WHERE take_group IS NOT NULL;
