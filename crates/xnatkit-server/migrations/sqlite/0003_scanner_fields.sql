-- Scanner and DICOM identity fields XNAT fills from the headers on import
-- (issue 3). Nullable: sessions created through the REST API or imported
-- before this migration simply have none, and NULL keeps them out of JSON.

ALTER TABLE experiments ADD COLUMN scanner TEXT;
ALTER TABLE experiments ADD COLUMN scanner_manufacturer TEXT;
ALTER TABLE experiments ADD COLUMN scanner_model TEXT;
ALTER TABLE experiments ADD COLUMN operator TEXT;
ALTER TABLE experiments ADD COLUMN acquisition_site TEXT;
ALTER TABLE experiments ADD COLUMN dcm_accession_number TEXT;
ALTER TABLE experiments ADD COLUMN dcm_patient_id TEXT;
ALTER TABLE experiments ADD COLUMN dcm_patient_name TEXT;
ALTER TABLE experiments ADD COLUMN field_strength TEXT;

ALTER TABLE scans ADD COLUMN scanner TEXT;
ALTER TABLE scans ADD COLUMN scanner_manufacturer TEXT;
ALTER TABLE scans ADD COLUMN scanner_model TEXT;
ALTER TABLE scans ADD COLUMN start_time TEXT;
ALTER TABLE scans ADD COLUMN body_part_examined TEXT;
ALTER TABLE scans ADD COLUMN series_class TEXT;
