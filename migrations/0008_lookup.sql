-- vidkeep catalogue, schema version 8: find a job by what people have in hand. `vidkeep show`
-- and the UI's search take a spec file name, a task id or a request id; without these indexes
-- each lookup read the whole jobs table (and `show` loaded every job into memory).

CREATE INDEX jobs_by_task_id ON jobs (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX jobs_by_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX jobs_by_spec_name ON jobs (spec_name);
