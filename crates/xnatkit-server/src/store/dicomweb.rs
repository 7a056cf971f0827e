//! The rows DICOMweb answers from: studies (sessions with a Study Instance
//! UID and the patient fields the import stored), series (scans with a
//! Series Instance UID) and instances (`dicom_instances`, one row per
//! indexed archive file). Filtering by the caller's projects and by QIDO
//! matching keys happens in [`crate::dicomweb`]; these queries only fetch.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, int, text};

/// A session that is a DICOM study.
#[derive(Debug, Clone)]
pub struct StudyRow {
    pub experiment_id: String,
    pub project: String,
    pub study_uid: String,
    /// XNAT's `YYYY-MM-DD`.
    pub date: String,
    /// XNAT's `HH:MM:SS`.
    pub time: String,
    pub description: String,
    pub accession_number: String,
    pub patient_id: String,
    pub patient_name: String,
}

/// A scan that is a DICOM series.
#[derive(Debug, Clone)]
pub struct SeriesRow {
    pub scan_pk: i64,
    pub experiment_id: String,
    pub scan_id: String,
    pub series_uid: String,
    pub modality: String,
    pub description: String,
}

/// One indexed DICOM instance and where its bytes are.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub file_id: i64,
    pub experiment_id: String,
    pub scan_pk: i64,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub transfer_syntax: String,
    /// The resource folder, relative to the archive root.
    pub dir: String,
    /// The file's path in its resource.
    pub path: String,
    pub size: i64,
}

/// An archive file of a scan that has no index row for its current bytes.
#[derive(Debug, Clone)]
pub struct UnindexedFile {
    pub file_id: i64,
    pub experiment_id: String,
    pub scan_pk: i64,
    pub md5: String,
    pub dir: String,
    pub path: String,
}

/// The index row of one file; `sop_instance_uid` empty for a file that is
/// not DICOM.
#[derive(Debug, Clone, Default)]
pub struct NewInstance {
    pub file_id: i64,
    pub experiment_id: String,
    pub scan_pk: i64,
    pub md5: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub transfer_syntax: String,
}

/// Studies narrowed by optional filters: each `$n` is '' for "no filter".
/// $1 Study Instance UID, $2 Patient ID (LIKE pattern), $3 lower-cased
/// Patient Name (LIKE pattern), $4 Accession Number, $5/$6 first/last
/// date (`YYYY-MM-DD`). The caller still matches every key exactly; these
/// only keep rows that cannot match from being read at all.
macro_rules! studies_sql {
    () => {
        "SELECT e.id, e.project, e.uid, e.date, e.time, e.session_type, \
         e.dcm_accession_number, e.dcm_patient_id, e.dcm_patient_name \
         FROM experiments e WHERE e.uid <> '' \
         AND ($1 = '' OR e.uid = $1) \
         AND ($2 = '' OR COALESCE(e.dcm_patient_id, '') LIKE $2 ESCAPE '\\') \
         AND ($3 = '' OR LOWER(COALESCE(e.dcm_patient_name, '')) LIKE $3 ESCAPE '\\') \
         AND ($4 = '' OR COALESCE(e.dcm_accession_number, '') = $4) \
         AND ($5 = '' OR e.date >= $5) AND ($6 = '' OR e.date <= $6) \
         ORDER BY e.id"
    };
}

/// What a study search lets the database narrow ([`Store::dicom_studies`]).
#[derive(Debug, Clone, Default)]
pub struct StudyFilter {
    pub study_uid: String,
    /// A LIKE pattern (`\` escapes).
    pub patient_id: String,
    /// A lower-case LIKE pattern (`\` escapes).
    pub patient_name: String,
    pub accession_number: String,
    /// `YYYY-MM-DD` or ''.
    pub date_from: String,
    pub date_to: String,
}

macro_rules! series_sql {
    () => {
        "SELECT pk, experiment_id, scan_id, uid, modality, series_description \
     FROM scans WHERE uid <> ''"
    };
}

macro_rules! order_sql {
    () => {
        " ORDER BY d.experiment_id, d.series_uid, d.instance_number, f.path"
    };
}

macro_rules! instances_sql {
    () => {
        "SELECT d.file_id, d.experiment_id, d.scan_pk, d.sop_instance_uid, \
     d.sop_class_uid, d.study_uid, d.series_uid, d.instance_number, d.number_of_frames, \
     d.transfer_syntax, r.dir, f.path, f.size FROM dicom_instances d \
     JOIN files f ON f.id = d.file_id AND f.md5 = d.md5 \
     JOIN resources r ON r.id = f.resource_id WHERE d.sop_instance_uid <> ''"
    };
}

macro_rules! unindexed_sql {
    () => {
        "SELECT f.id, s.experiment_id, s.pk, f.md5, r.dir, f.path FROM scans s \
     JOIN resources r ON r.owner_kind = 'scan' AND r.owner_key = CAST(s.pk AS TEXT) \
     JOIN files f ON f.resource_id = r.id \
     LEFT JOIN dicom_instances d ON d.file_id = f.id AND d.md5 = f.md5 \
     WHERE d.file_id IS NULL"
    };
}

fn opt(row: &AnyRow, col: &str) -> Result<String, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(col)?.unwrap_or_default())
}

fn study_from(row: &AnyRow) -> Result<StudyRow, sqlx::Error> {
    Ok(StudyRow {
        experiment_id: text(row, "id")?,
        project: text(row, "project")?,
        study_uid: text(row, "uid")?,
        date: text(row, "date")?,
        time: text(row, "time")?,
        description: text(row, "session_type")?,
        accession_number: opt(row, "dcm_accession_number")?,
        patient_id: opt(row, "dcm_patient_id")?,
        patient_name: opt(row, "dcm_patient_name")?,
    })
}

fn series_from(row: &AnyRow) -> Result<SeriesRow, sqlx::Error> {
    Ok(SeriesRow {
        scan_pk: int(row, "pk")?,
        experiment_id: text(row, "experiment_id")?,
        scan_id: text(row, "scan_id")?,
        series_uid: text(row, "uid")?,
        modality: text(row, "modality")?,
        description: text(row, "series_description")?,
    })
}

fn instance_from(row: &AnyRow) -> Result<InstanceRow, sqlx::Error> {
    Ok(InstanceRow {
        file_id: int(row, "file_id")?,
        experiment_id: text(row, "experiment_id")?,
        scan_pk: int(row, "scan_pk")?,
        sop_instance_uid: text(row, "sop_instance_uid")?,
        sop_class_uid: text(row, "sop_class_uid")?,
        study_uid: text(row, "study_uid")?,
        series_uid: text(row, "series_uid")?,
        instance_number: row.try_get::<Option<i64>, _>("instance_number")?,
        number_of_frames: row.try_get::<Option<i64>, _>("number_of_frames")?,
        transfer_syntax: text(row, "transfer_syntax")?,
        dir: text(row, "dir")?,
        path: text(row, "path")?,
        size: int(row, "size")?,
    })
}

impl Store {
    /// The studies of the site that may match `filter`.
    pub async fn dicom_studies(&self, filter: &StudyFilter) -> Result<Vec<StudyRow>, sqlx::Error> {
        let rows = sqlx::query(studies_sql!())
            .bind(&filter.study_uid)
            .bind(&filter.patient_id)
            .bind(&filter.patient_name)
            .bind(&filter.accession_number)
            .bind(&filter.date_from)
            .bind(&filter.date_to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(study_from).collect()
    }

    /// One page of the studies visible in `readable` projects (their own
    /// sessions and the ones shared into them), one row per study UID (its
    /// session with the smallest ID), ordered by session ID: what an
    /// unfiltered QIDO `/studies` answers, paged by the database instead of
    /// reading every study row (each row costs a hop from SQLite's thread).
    pub async fn dicom_studies_page(
        &self,
        readable: &[String],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<StudyRow>, sqlx::Error> {
        let projects = serde_json::to_string(readable).unwrap_or_else(|_| "[]".to_owned());
        let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        // Only the way the JSON array of projects is unpacked differs.
        macro_rules! page_sql {
            ($readable:literal) => {
                concat!(
                    "WITH readable AS (",
                    $readable,
                    "), visible AS (SELECT e.id, e.uid FROM experiments e WHERE e.uid <> '' \
                     AND (e.project IN (SELECT project FROM readable) \
                          OR e.id IN (SELECT experiment_id FROM experiment_shares \
                                      WHERE project IN (SELECT project FROM readable)))), \
                     firsts AS (SELECT MIN(id) AS id FROM visible GROUP BY uid) \
                     SELECT e.id, e.project, e.uid, e.date, e.time, e.session_type, \
                     e.dcm_accession_number, e.dcm_patient_id, e.dcm_patient_name \
                     FROM experiments e WHERE e.id IN (SELECT id FROM firsts) \
                     ORDER BY e.id LIMIT $2 OFFSET $3"
                )
            };
        }
        let sql = match self.backend() {
            super::Backend::Sqlite => page_sql!("SELECT value AS project FROM json_each($1)"),
            super::Backend::Postgres => {
                page_sql!("SELECT jsonb_array_elements_text($1::jsonb) AS project")
            }
        };
        let rows = sqlx::query(sql)
            .bind(&projects)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(study_from).collect()
    }

    /// (experiment ID, project) of every share of an experiment.
    pub async fn experiment_share_pairs(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query("SELECT experiment_id, project FROM experiment_shares")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((text(r, "experiment_id")?, text(r, "project")?)))
            .collect()
    }

    /// (experiment ID, modality, series count) over the series of one
    /// session, or of the site.
    pub async fn dicom_series_modalities(
        &self,
        experiment_id: Option<&str>,
    ) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        let rows = match experiment_id {
            Some(id) => {
                sqlx::query(
                    "SELECT experiment_id, modality, COUNT(*) AS n FROM scans \
                     WHERE uid <> '' AND experiment_id = $1 GROUP BY experiment_id, modality",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT experiment_id, modality, COUNT(*) AS n FROM scans WHERE uid <> '' \
                     GROUP BY experiment_id, modality",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok((
                    text(r, "experiment_id")?,
                    text(r, "modality")?,
                    int(r, "n")?,
                ))
            })
            .collect()
    }

    /// (experiment ID, scan pk, instance count) over the indexed instances
    /// of one session, or of the site.
    pub async fn dicom_instance_counts(
        &self,
        experiment_id: Option<&str>,
    ) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
        let rows = match experiment_id {
            Some(id) => {
                sqlx::query(
                    "SELECT experiment_id, scan_pk, COUNT(DISTINCT sop_instance_uid) AS n \
                     FROM dicom_instances WHERE sop_instance_uid <> '' AND experiment_id = $1 \
                     GROUP BY experiment_id, scan_pk",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT experiment_id, scan_pk, COUNT(DISTINCT sop_instance_uid) AS n \
                     FROM dicom_instances WHERE sop_instance_uid <> '' \
                     GROUP BY experiment_id, scan_pk",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok((text(r, "experiment_id")?, int(r, "scan_pk")?, int(r, "n")?)))
            .collect()
    }

    /// [`Store::dicom_series_modalities`] and [`Store::dicom_instance_counts`]
    /// for the sessions `experiment_ids`, in two queries whatever their
    /// number (a QIDO page of 100 studies asked 200 before). The IDs travel
    /// as one JSON array parameter, so the SQL stays static.
    pub async fn dicom_study_facts(
        &self,
        experiment_ids: &[String],
    ) -> Result<(Vec<(String, String, i64)>, Vec<(String, i64, i64)>), sqlx::Error> {
        if experiment_ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let ids = serde_json::to_string(experiment_ids).unwrap_or_else(|_| "[]".to_owned());
        // Only the way the JSON array of IDs is unpacked differs.
        macro_rules! facts_sql {
            ($ids:literal) => {
                (
                    concat!(
                        "SELECT experiment_id, modality, COUNT(*) AS n FROM scans \
                         WHERE uid <> '' AND experiment_id IN (",
                        $ids,
                        ") GROUP BY experiment_id, modality"
                    ),
                    concat!(
                        "SELECT experiment_id, scan_pk, COUNT(DISTINCT sop_instance_uid) AS n \
                         FROM dicom_instances WHERE sop_instance_uid <> '' AND experiment_id IN (",
                        $ids,
                        ") GROUP BY experiment_id, scan_pk"
                    ),
                )
            };
        }
        let (series_sql, instances_sql) = match self.backend() {
            super::Backend::Sqlite => facts_sql!("SELECT value FROM json_each($1)"),
            super::Backend::Postgres => facts_sql!("SELECT jsonb_array_elements_text($1::jsonb)"),
        };
        let series = sqlx::query(series_sql)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    text(r, "experiment_id")?,
                    text(r, "modality")?,
                    int(r, "n")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let instances = sqlx::query(instances_sql)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((text(r, "experiment_id")?, int(r, "scan_pk")?, int(r, "n")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((series, instances))
    }

    /// The series of one session, or of the whole site.
    pub async fn dicom_series(
        &self,
        experiment_id: Option<&str>,
    ) -> Result<Vec<SeriesRow>, sqlx::Error> {
        let rows = match experiment_id {
            Some(id) => {
                sqlx::query(concat!(
                    series_sql!(),
                    " AND experiment_id = $1 ORDER BY pk"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(series_sql!(), " ORDER BY pk"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(series_from).collect()
    }

    /// Indexed instances of one session (optionally one series of it), or
    /// of the whole site, in series then instance-number order.
    pub async fn dicom_instances(
        &self,
        experiment_id: Option<&str>,
        series_uid: Option<&str>,
    ) -> Result<Vec<InstanceRow>, sqlx::Error> {
        let rows = match (experiment_id, series_uid) {
            (Some(e), Some(s)) => {
                sqlx::query(concat!(
                    instances_sql!(),
                    " AND d.experiment_id = $1 AND d.series_uid = $2",
                    order_sql!()
                ))
                .bind(e)
                .bind(s)
                .fetch_all(&self.pool)
                .await?
            }
            (Some(e), None) => {
                sqlx::query(concat!(
                    instances_sql!(),
                    " AND d.experiment_id = $1",
                    order_sql!()
                ))
                .bind(e)
                .fetch_all(&self.pool)
                .await?
            }
            (None, _) => {
                sqlx::query(concat!(instances_sql!(), order_sql!()))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(instance_from).collect()
    }

    /// Scan files of one session (or of the site) not indexed for their
    /// current bytes.
    pub async fn unindexed_scan_files(
        &self,
        experiment_id: Option<&str>,
    ) -> Result<Vec<UnindexedFile>, sqlx::Error> {
        let rows = match experiment_id {
            Some(id) => {
                sqlx::query(concat!(unindexed_sql!(), " AND s.experiment_id = $1"))
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(unindexed_sql!()).fetch_all(&self.pool).await?,
        };
        rows.iter()
            .map(|r| {
                Ok(UnindexedFile {
                    file_id: int(r, "id")?,
                    experiment_id: text(r, "experiment_id")?,
                    scan_pk: int(r, "pk")?,
                    md5: text(r, "md5")?,
                    dir: text(r, "dir")?,
                    path: text(r, "path")?,
                })
            })
            .collect()
    }

    /// Is an instance with this SOP Instance UID archived (and indexed), in
    /// a session of `project` or anywhere?
    pub async fn dicom_sop_instance_exists(
        &self,
        sop_uid: &str,
        project: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let found = match project {
            Some(p) => {
                sqlx::query(
                    "SELECT d.file_id FROM dicom_instances d JOIN files f ON f.id = d.file_id \
                     AND f.md5 = d.md5 JOIN experiments e ON e.id = d.experiment_id \
                     WHERE d.sop_instance_uid = $1 AND e.project = $2 LIMIT 1",
                )
                .bind(sop_uid)
                .bind(p)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT d.file_id FROM dicom_instances d JOIN files f ON f.id = d.file_id \
                     AND f.md5 = d.md5 WHERE d.sop_instance_uid = $1 LIMIT 1",
                )
                .bind(sop_uid)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        Ok(found.is_some())
    }

    /// Records index rows, replacing older rows of the same files, in one
    /// transaction. A file deleted meanwhile is skipped (its row would
    /// violate the foreign key; the next search does not need it).
    pub async fn record_dicom_instances(&self, rows: &[NewInstance]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for row in rows {
            sqlx::query("DELETE FROM dicom_instances WHERE file_id = $1")
                .bind(row.file_id)
                .execute(&mut *tx)
                .await?;
            let exists = sqlx::query("SELECT id FROM files WHERE id = $1")
                .bind(row.file_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                continue;
            }
            sqlx::query(
                "INSERT INTO dicom_instances (file_id, experiment_id, scan_pk, md5, \
                 sop_instance_uid, sop_class_uid, study_uid, series_uid, instance_number, \
                 number_of_frames, transfer_syntax) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(row.file_id)
            .bind(&row.experiment_id)
            .bind(row.scan_pk)
            .bind(&row.md5)
            .bind(&row.sop_instance_uid)
            .bind(&row.sop_class_uid)
            .bind(&row.study_uid)
            .bind(&row.series_uid)
            .bind(row.instance_number)
            .bind(row.number_of_frames)
            .bind(&row.transfer_syntax)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}
