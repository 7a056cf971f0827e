-- The pipeline engine (issue 13): commands in XNAT's command-JSON shape,
-- their wrappers and where they are enabled, the job queue (one row per
-- container: claimed by compare-and-set on status, claimed_by = the
-- instance that runs it), each job's status history, the wrk:workflowData
-- rows every launch writes, and Event Service subscriptions that launch on
-- archive. 0009 is taken by the assessor tables.

CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    builtin INTEGER NOT NULL DEFAULT 0,
    json TEXT NOT NULL,
    created INTEGER NOT NULL
);

CREATE TABLE command_wrappers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id INTEGER NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (command_id, name)
);

-- project '' is the site setting.
CREATE TABLE wrapper_enabled (
    wrapper_id INTEGER NOT NULL REFERENCES command_wrappers(id) ON DELETE CASCADE,
    project TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (wrapper_id, project)
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id INTEGER NOT NULL,
    wrapper_id INTEGER NOT NULL,
    project TEXT NOT NULL,
    username TEXT NOT NULL,
    status TEXT NOT NULL,
    status_time INTEGER NOT NULL,
    root_uri TEXT NOT NULL,
    params TEXT NOT NULL,
    resolved TEXT NOT NULL,
    workflow_id INTEGER NOT NULL DEFAULT 0,
    bulk_id TEXT NOT NULL DEFAULT '',
    claimed_by TEXT NOT NULL DEFAULT '',
    backend TEXT NOT NULL DEFAULT '',
    kill_requested INTEGER NOT NULL DEFAULT 0,
    exit_code TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL
);
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_project ON jobs (project, id);

CREATE TABLE job_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL DEFAULT '',
    time_recorded INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    exit_code TEXT NOT NULL DEFAULT ''
);
CREATE INDEX job_history_job ON job_history (job_id, id);

CREATE TABLE workflows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data_id TEXT NOT NULL,
    data_type TEXT NOT NULL,
    scan_id TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL,
    pipeline_name TEXT NOT NULL,
    status TEXT NOT NULL,
    launch_time INTEGER NOT NULL,
    step_time INTEGER NOT NULL,
    create_user TEXT NOT NULL,
    job_id TEXT NOT NULL DEFAULT '',
    step_description TEXT NOT NULL DEFAULT '',
    percentage_complete TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT ''
);
CREATE INDEX workflows_data ON workflows (data_id, id);
CREATE INDEX workflows_pipeline ON workflows (pipeline_name, id);

CREATE TABLE event_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    project TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_status TEXT NOT NULL,
    wrapper_id INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    json TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX event_subscriptions_project ON event_subscriptions (project);
