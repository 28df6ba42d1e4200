-- vidkeep catalogue, schema version 9: the grid's orders and the project filter at a million jobs
-- (issue 14). Measured at 1,000,000 jobs: a page sorted by model or by project sorted every job
-- (0.2-0.5 s), since no index had the listing's order (newest first within a model or project);
-- and the project filter, which matches any case (`= ? COLLATE NOCASE`), could not use the
-- BINARY index on project, so it walked the whole creation-time index. Each index below is read
-- in the listing's order, so a page stops after its rows.

-- Sort by model: `ORDER BY model, created_at DESC, id DESC` (and backwards for a previous page).
CREATE INDEX jobs_by_model_newest ON jobs (model, created_at DESC, id DESC);
DROP INDEX jobs_by_model;

-- Sort by project, jobs without one last: `ORDER BY project IS NULL, project, created_at DESC, id DESC`.
CREATE INDEX jobs_by_project_sorted ON jobs (project IS NULL, project, created_at DESC, id DESC);
DROP INDEX jobs_by_project;

-- The project filter (any case), newest first.
CREATE INDEX jobs_by_project_nocase ON jobs (project COLLATE NOCASE, created_at DESC, id DESC);
