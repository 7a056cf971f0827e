-- Image assessors (server behaviour §1.9): derived records attached to a
-- session, addressed as experiments are (site-wide accession ID from the
-- experiment counter, label unique in the project across sessions,
-- shares and assessors — the store checks that in the writing
-- transaction). Their resources are `resources` rows with owner_kind
-- 'assessor' and owner_key the assessor ID.
--
-- fields: the XPath-settable fields of the type (procstatus, pass, ...) as
-- a JSON object of strings; children: nested records the server writes
-- (a QC assessment's per-scan statistics) as the JSON `children` array of
-- XNAT's items document, '' when none.
CREATE TABLE assessors (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    fields TEXT NOT NULL DEFAULT '{}',
    children TEXT NOT NULL DEFAULT '',
    created BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (project, label)
);
CREATE INDEX assessors_by_session ON assessors (session_id);
