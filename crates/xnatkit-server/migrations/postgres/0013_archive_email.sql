-- Who gets the archive email of a project (issue 15): one row per address;
-- set by the project's owners (Manage tab, PUT /xapi/projects/P/archive-email).
CREATE TABLE project_archive_email (
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (project, address)
);
