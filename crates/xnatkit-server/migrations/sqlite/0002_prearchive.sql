-- DICOM ingestion: per-project auto-archive setting and the prearchive.
-- Prearchive rows are the index of folders below DATA/prearchive; the files
-- themselves are only on disk, so a rebuild can always recreate the rows.

CREATE TABLE project_prearchive_codes (
    project TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    code INTEGER NOT NULL
);

-- project: the project ID, or 'Unassigned' for data no rule could route
-- (no foreign key: Unassigned is not a project, and a session must outlive
-- nothing but its folder). folder: the session folder name, unique within
-- (project, timestamp). tag: the StudyInstanceUID.
CREATE TABLE prearchive_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    folder TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    tag TEXT NOT NULL,
    status TEXT NOT NULL,
    xsi_type TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    scan_date TEXT NOT NULL DEFAULT '',
    scan_time TEXT NOT NULL DEFAULT '',
    session_type TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    uploaded INTEGER NOT NULL,
    lastmod INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    UNIQUE (project, timestamp, folder)
);
CREATE INDEX prearchive_sessions_by_study ON prearchive_sessions (project, tag, folder);

CREATE TABLE prearchive_scans (
    session_id INTEGER NOT NULL REFERENCES prearchive_sessions(id) ON DELETE CASCADE,
    scan_id TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    scan_type TEXT NOT NULL DEFAULT '',
    series_description TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    frames INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, scan_id)
);
