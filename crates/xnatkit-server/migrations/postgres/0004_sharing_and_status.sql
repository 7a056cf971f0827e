-- Sharing subjects and experiments into other projects (server behaviour
-- §1.10) and the experiment status behind /status, ?activate, ?quarantine.
--
-- A share makes an object, still owned by its own project, visible in
-- another project under a label of that project. Labels must be unique in a
-- project across owned and shared objects; the UNIQUE (project, label) below
-- covers shares against shares, the store checks owned labels against
-- shares (and the reverse) inside the writing transaction.

CREATE TABLE subject_shares (
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (subject_id, project),
    UNIQUE (project, label)
);

CREATE TABLE experiment_shares (
    experiment_id TEXT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (experiment_id, project),
    UNIQUE (project, label)
);

-- 'active' or 'quarantine' (XNAT's values; 'locked'/'obsolete' are not offered).
ALTER TABLE experiments ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
