-- Intake looks up the spec files that sit in the inbox or processing/ (at start, to find a file a
-- stop left in processing/ with no job); a partial index keeps that independent of the archive's size.
CREATE INDEX IF NOT EXISTS jobs_spec_unsettled ON jobs (spec_place, spec_file) WHERE spec_place IN ('inbox', 'processing');
