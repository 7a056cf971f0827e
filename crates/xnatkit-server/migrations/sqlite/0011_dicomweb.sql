-- DICOMweb (issue 16): the per-instance facts QIDO-RS and WADO-RS answer
-- from, so no search opens a file. One row per archived file that was
-- examined; sop_instance_uid '' marks a file that is not DICOM (examined,
-- nothing to index). md5 is the digest of the bytes that were indexed: a
-- file replaced in place (overwrite=delete) no longer matches and is
-- indexed again. Filled when a session is archived (import service, C-STORE
-- receiver, prearchive archive, STOW-RS) and, for files that arrived another
-- way (REST uploads) or before this table existed, the first time DICOMweb
-- touches their session.
CREATE TABLE dicom_instances (
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    experiment_id TEXT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    scan_pk INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL DEFAULT '',
    study_uid TEXT NOT NULL DEFAULT '',
    series_uid TEXT NOT NULL DEFAULT '',
    instance_number INTEGER,
    number_of_frames INTEGER,
    transfer_syntax TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dicom_instances_by_sop ON dicom_instances (sop_instance_uid);
CREATE INDEX dicom_instances_by_experiment ON dicom_instances (experiment_id, series_uid);
CREATE INDEX experiments_by_uid ON experiments (uid);
