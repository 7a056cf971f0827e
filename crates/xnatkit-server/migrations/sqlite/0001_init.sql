-- xnat-server schema, SQLite flavour. Integers are INTEGER (i64), booleans
-- 0/1 integers and timestamps epoch milliseconds, because sqlx's Any driver
-- only carries basic types.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    verified INTEGER NOT NULL DEFAULT 1,
    is_admin INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('subject', 0), ('experiment', 0);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    id_lower TEXT NOT NULL UNIQUE,
    secondary_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    accessibility TEXT NOT NULL,
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL
);

-- IDs of deleted projects: XNAT never lets them be reused.
CREATE TABLE retired_project_ids (
    id_lower TEXT PRIMARY KEY
);

CREATE TABLE project_roles (
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (project, username)
);

CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (project, label)
);

CREATE TABLE experiments (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    date TEXT NOT NULL DEFAULT '',
    time TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    uid TEXT NOT NULL DEFAULT '',
    session_type TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (project, label)
);

CREATE TABLE scans (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id TEXT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    scan_id TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT '',
    series_description TEXT NOT NULL DEFAULT '',
    quality TEXT NOT NULL DEFAULT 'usable',
    note TEXT NOT NULL DEFAULT '',
    uid TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    frames TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    UNIQUE (experiment_id, scan_id)
);

-- owner_kind: project | subject | experiment | scan; owner_key: the project
-- ID, subject ID, experiment ID or scan pk (as text). dir: the resource's
-- folder relative to the data directory, fixed at creation.
CREATE TABLE resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_kind TEXT NOT NULL,
    owner_key TEXT NOT NULL,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '',
    dir TEXT NOT NULL,
    created INTEGER NOT NULL,
    UNIQUE (owner_kind, owner_key, label)
);

CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    UNIQUE (resource_id, path)
);

CREATE TABLE custom_fields (
    owner_kind TEXT NOT NULL,
    owner_key TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner_kind, owner_key, name)
);

CREATE TABLE http_sessions (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);

CREATE TABLE alias_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alias TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    username TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1
);
