//! Subjects, experiments (sessions) and scans.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use xnatkit_model::{AccessionKind, XsiType, accession_id};

use super::journal::{JournalCommit, mark_committed};
use super::resources::{NewFile, Owner, insert_files, insert_resource};
use super::sharing::{ShareKind, check_label_free, lock_project_labels};
use super::{Store, int, next_counter, now_ms, text};

#[derive(Debug, Clone)]
pub struct Subject {
    pub id: String,
    pub project: String,
    pub label: String,
    pub created: i64,
    pub created_by: String,
}

/// XNAT's experiment status: whether a session is in use or held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentStatus {
    Active,
    Quarantine,
}

impl ExperimentStatus {
    /// The stored and served spelling (`GET {experiment}/status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Quarantine => "quarantine",
        }
    }

    pub fn parse(stored: &str) -> Result<Self, sqlx::Error> {
        match stored {
            "active" => Ok(Self::Active),
            "quarantine" => Ok(Self::Quarantine),
            other => Err(sqlx::Error::Decode(
                format!("unknown experiment status {other:?}").into(),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Experiment {
    pub id: String,
    pub project: String,
    pub subject_id: String,
    pub label: String,
    pub xsi_type: String,
    pub attrs: ExperimentAttrs,
    pub status: ExperimentStatus,
    pub created: i64,
    pub created_by: String,
}

/// The simple experiment properties clients set through XPath parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperimentAttrs {
    pub date: String,
    pub time: String,
    pub note: String,
    pub modality: String,
    pub uid: String,
    pub session_type: String,
    pub dicom: SessionDicomFields,
}

/// Session fields XNAT fills from the DICOM headers on import; empty means
/// absent (stored as NULL, left out of JSON). Not settable through XPath
/// parameters, so REST updates keep whatever the import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionDicomFields {
    /// StationName.
    pub scanner: String,
    pub scanner_manufacturer: String,
    pub scanner_model: String,
    /// OperatorsName.
    pub operator: String,
    /// InstitutionName.
    pub acquisition_site: String,
    pub accession_number: String,
    pub patient_id: String,
    pub patient_name: String,
    /// MagneticFieldStrength (MR only).
    pub field_strength: String,
}

/// Scan fields XNAT fills from the DICOM headers on import; empty means
/// absent, as for [`SessionDicomFields`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanDicomFields {
    pub scanner: String,
    pub scanner_manufacturer: String,
    pub scanner_model: String,
    /// SeriesTime.
    pub start_time: String,
    pub body_part_examined: String,
    pub series_class: String,
}

/// Empty strings become NULL so the nullable columns say "not in the header".
pub(crate) fn nullable(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

fn opt_text(row: &AnyRow, col: &str) -> Result<String, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(col)?.unwrap_or_default())
}

#[derive(Debug, Clone)]
pub struct Scan {
    pub pk: i64,
    pub experiment_id: String,
    pub scan_id: String,
    pub xsi_type: String,
    pub attrs: ScanAttrs,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanAttrs {
    pub scan_type: String,
    pub series_description: String,
    pub quality: String,
    pub note: String,
    pub uid: String,
    pub modality: String,
    pub frames: String,
    pub dicom: ScanDicomFields,
}

impl Default for ScanAttrs {
    fn default() -> Self {
        Self {
            scan_type: String::new(),
            series_description: String::new(),
            quality: "usable".to_owned(),
            note: String::new(),
            uid: String::new(),
            modality: String::new(),
            frames: String::new(),
            dicom: ScanDicomFields::default(),
        }
    }
}

/// A whole imaged session to store in one transaction (used by importers):
/// the subject is found by label or created, then the experiment, its scans,
/// their resources and the already-written files are recorded.
#[derive(Debug, Clone)]
pub struct NewSessionTree {
    pub project: String,
    pub subject_label: String,
    pub label: String,
    pub xsi_type: XsiType,
    pub attrs: ExperimentAttrs,
    pub scans: Vec<NewScanTree>,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewScanTree {
    pub scan_id: String,
    pub xsi_type: XsiType,
    pub attrs: ScanAttrs,
    /// Resource label (usually `DICOM`), format, content, folder relative to
    /// the data directory, and the files already committed in it.
    pub resource_label: String,
    pub resource_format: String,
    pub resource_content: String,
    pub resource_dir: String,
    pub files: Vec<NewFile>,
}

pub(super) fn subject_from(row: &AnyRow) -> Result<Subject, sqlx::Error> {
    Ok(Subject {
        id: text(row, "id")?,
        project: text(row, "project")?,
        label: text(row, "label")?,
        created: int(row, "created")?,
        created_by: text(row, "created_by")?,
    })
}

pub(super) fn experiment_from(row: &AnyRow) -> Result<Experiment, sqlx::Error> {
    Ok(Experiment {
        id: text(row, "id")?,
        project: text(row, "project")?,
        subject_id: text(row, "subject_id")?,
        label: text(row, "label")?,
        xsi_type: text(row, "xsi_type")?,
        attrs: ExperimentAttrs {
            date: text(row, "date")?,
            time: text(row, "time")?,
            note: text(row, "note")?,
            modality: text(row, "modality")?,
            uid: text(row, "uid")?,
            session_type: text(row, "session_type")?,
            dicom: SessionDicomFields {
                scanner: opt_text(row, "scanner")?,
                scanner_manufacturer: opt_text(row, "scanner_manufacturer")?,
                scanner_model: opt_text(row, "scanner_model")?,
                operator: opt_text(row, "operator")?,
                acquisition_site: opt_text(row, "acquisition_site")?,
                accession_number: opt_text(row, "dcm_accession_number")?,
                patient_id: opt_text(row, "dcm_patient_id")?,
                patient_name: opt_text(row, "dcm_patient_name")?,
                field_strength: opt_text(row, "field_strength")?,
            },
        },
        status: ExperimentStatus::parse(&text(row, "status")?)?,
        created: int(row, "created")?,
        created_by: text(row, "created_by")?,
    })
}

fn scan_from(row: &AnyRow) -> Result<Scan, sqlx::Error> {
    Ok(Scan {
        pk: int(row, "pk")?,
        experiment_id: text(row, "experiment_id")?,
        scan_id: text(row, "scan_id")?,
        xsi_type: text(row, "xsi_type")?,
        attrs: ScanAttrs {
            scan_type: text(row, "type")?,
            series_description: text(row, "series_description")?,
            quality: text(row, "quality")?,
            note: text(row, "note")?,
            uid: text(row, "uid")?,
            modality: text(row, "modality")?,
            frames: text(row, "frames")?,
            dicom: ScanDicomFields {
                scanner: opt_text(row, "scanner")?,
                scanner_manufacturer: opt_text(row, "scanner_manufacturer")?,
                scanner_model: opt_text(row, "scanner_model")?,
                start_time: opt_text(row, "start_time")?,
                body_part_examined: opt_text(row, "body_part_examined")?,
                series_class: opt_text(row, "series_class")?,
            },
        },
        created: int(row, "created")?,
    })
}

const SUBJECT_BY_ID: &str =
    "SELECT id, project, label, created, created_by FROM subjects WHERE id = $1";
const SUBJECT_BY_LABEL: &str = "SELECT id, project, label, created, created_by FROM subjects WHERE project = $1 AND label = $2";
const SUBJECTS_OF_PROJECT: &str = "SELECT id, project, label, created, created_by FROM subjects WHERE project = $1 ORDER BY label";
const ALL_SUBJECTS: &str =
    "SELECT id, project, label, created, created_by FROM subjects ORDER BY project, label";

const EXPERIMENT_BY_ID: &str = "SELECT id, project, subject_id, label, xsi_type, date, time, note, modality, uid, session_type, scanner, scanner_manufacturer, scanner_model, operator, acquisition_site, dcm_accession_number, dcm_patient_id, dcm_patient_name, field_strength, status, created, created_by FROM experiments WHERE id = $1";
const EXPERIMENT_BY_LABEL: &str = "SELECT id, project, subject_id, label, xsi_type, date, time, note, modality, uid, session_type, scanner, scanner_manufacturer, scanner_model, operator, acquisition_site, dcm_accession_number, dcm_patient_id, dcm_patient_name, field_strength, status, created, created_by FROM experiments WHERE project = $1 AND label = $2";
const EXPERIMENTS_OF_PROJECT: &str = "SELECT id, project, subject_id, label, xsi_type, date, time, note, modality, uid, session_type, scanner, scanner_manufacturer, scanner_model, operator, acquisition_site, dcm_accession_number, dcm_patient_id, dcm_patient_name, field_strength, status, created, created_by FROM experiments WHERE project = $1 ORDER BY label";
const EXPERIMENTS_OF_SUBJECT: &str = "SELECT id, project, subject_id, label, xsi_type, date, time, note, modality, uid, session_type, scanner, scanner_manufacturer, scanner_model, operator, acquisition_site, dcm_accession_number, dcm_patient_id, dcm_patient_name, field_strength, status, created, created_by FROM experiments WHERE subject_id = $1 ORDER BY label";
const ALL_EXPERIMENTS: &str = "SELECT id, project, subject_id, label, xsi_type, date, time, note, modality, uid, session_type, scanner, scanner_manufacturer, scanner_model, operator, acquisition_site, dcm_accession_number, dcm_patient_id, dcm_patient_name, field_strength, status, created, created_by FROM experiments ORDER BY project, label";

const SCAN_BY_ID: &str = "SELECT pk, experiment_id, scan_id, xsi_type, type, series_description, quality, note, uid, modality, frames, scanner, scanner_manufacturer, scanner_model, start_time, body_part_examined, series_class, created FROM scans WHERE experiment_id = $1 AND scan_id = $2";
const SCANS_OF_EXPERIMENT: &str = "SELECT pk, experiment_id, scan_id, xsi_type, type, series_description, quality, note, uid, modality, frames, scanner, scanner_manufacturer, scanner_model, start_time, body_part_examined, series_class, created FROM scans WHERE experiment_id = $1 ORDER BY pk";

/// Insert-or-get of a subject owned by `project` with `label`: under the
/// project's label lock, an existing one is returned (so parallel first
/// imports of one new subject all succeed), else it is inserted with a fresh
/// accession ID. A label taken by a subject shared into the project is a
/// unique violation.
async fn insert_subject(
    conn: &mut AnyConnection,
    site_id: &str,
    project: &str,
    label: &str,
    created_by: &str,
) -> Result<String, sqlx::Error> {
    lock_project_labels(conn, project).await?;
    let existing = sqlx::query(SUBJECT_BY_LABEL)
        .bind(project)
        .bind(label)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = existing {
        return text(&row, "id");
    }
    check_label_free(conn, ShareKind::Subject, project, label, "").await?;
    let n = next_counter(conn, "subject").await?;
    let id = accession_id(site_id, AccessionKind::Subject, n.unsigned_abs());
    sqlx::query(
        "INSERT INTO subjects (id, project, label, created, created_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(project)
    .bind(label)
    .bind(now_ms())
    .bind(created_by)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

// One column per argument; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn insert_experiment(
    conn: &mut AnyConnection,
    site_id: &str,
    project: &str,
    subject_id: &str,
    label: &str,
    xsi_type: &str,
    attrs: &ExperimentAttrs,
    created_by: &str,
) -> Result<String, sqlx::Error> {
    lock_project_labels(conn, project).await?;
    check_label_free(conn, ShareKind::Experiment, project, label, "").await?;
    let n = next_counter(conn, "experiment").await?;
    let id = accession_id(site_id, AccessionKind::Experiment, n.unsigned_abs());
    sqlx::query(
        "INSERT INTO experiments (id, project, subject_id, label, xsi_type, date, time, note, modality, uid, session_type, created, created_by, \
         scanner, scanner_manufacturer, scanner_model, operator, acquisition_site, dcm_accession_number, dcm_patient_id, dcm_patient_name, field_strength) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
    )
    .bind(&id)
    .bind(project)
    .bind(subject_id)
    .bind(label)
    .bind(xsi_type)
    .bind(&attrs.date)
    .bind(&attrs.time)
    .bind(&attrs.note)
    .bind(&attrs.modality)
    .bind(&attrs.uid)
    .bind(&attrs.session_type)
    .bind(now_ms())
    .bind(created_by)
    .bind(nullable(&attrs.dicom.scanner))
    .bind(nullable(&attrs.dicom.scanner_manufacturer))
    .bind(nullable(&attrs.dicom.scanner_model))
    .bind(nullable(&attrs.dicom.operator))
    .bind(nullable(&attrs.dicom.acquisition_site))
    .bind(nullable(&attrs.dicom.accession_number))
    .bind(nullable(&attrs.dicom.patient_id))
    .bind(nullable(&attrs.dicom.patient_name))
    .bind(nullable(&attrs.dicom.field_strength))
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

async fn upsert_scan(
    conn: &mut AnyConnection,
    experiment_id: &str,
    scan_id: &str,
    xsi_type: &str,
    attrs: &ScanAttrs,
) -> Result<i64, sqlx::Error> {
    let existing = sqlx::query("SELECT pk FROM scans WHERE experiment_id = $1 AND scan_id = $2")
        .bind(experiment_id)
        .bind(scan_id)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = existing {
        let pk = int(&row, "pk")?;
        write_scan_attrs(conn, pk, xsi_type, attrs).await?;
        return Ok(pk);
    }
    insert_scan_row(conn, experiment_id, scan_id, xsi_type, attrs).await
}

/// Inserts a new scan row with every column, header fields included; the
/// one place both importers (new session or merge) write scans. A scan
/// created meanwhile by a parallel request is returned instead (insert-or-get,
/// as for resources).
pub(crate) async fn insert_scan_row(
    conn: &mut AnyConnection,
    experiment_id: &str,
    scan_id: &str,
    xsi_type: &str,
    attrs: &ScanAttrs,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO scans (experiment_id, scan_id, xsi_type, type, series_description, quality, note, uid, modality, frames, created, \
         scanner, scanner_manufacturer, scanner_model, start_time, body_part_examined, series_class) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (experiment_id, scan_id) DO NOTHING RETURNING pk",
    )
    .bind(experiment_id)
    .bind(scan_id)
    .bind(xsi_type)
    .bind(&attrs.scan_type)
    .bind(&attrs.series_description)
    .bind(&attrs.quality)
    .bind(&attrs.note)
    .bind(&attrs.uid)
    .bind(&attrs.modality)
    .bind(&attrs.frames)
    .bind(now_ms())
    .bind(nullable(&attrs.dicom.scanner))
    .bind(nullable(&attrs.dicom.scanner_manufacturer))
    .bind(nullable(&attrs.dicom.scanner_model))
    .bind(nullable(&attrs.dicom.start_time))
    .bind(nullable(&attrs.dicom.body_part_examined))
    .bind(nullable(&attrs.dicom.series_class))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return int(&row, "pk");
    }
    let existing = sqlx::query("SELECT pk FROM scans WHERE experiment_id = $1 AND scan_id = $2")
        .bind(experiment_id)
        .bind(scan_id)
        .fetch_one(&mut *conn)
        .await?;
    int(&existing, "pk")
}

async fn write_scan_attrs(
    conn: &mut AnyConnection,
    pk: i64,
    xsi_type: &str,
    attrs: &ScanAttrs,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scans SET xsi_type = $1, type = $2, series_description = $3, quality = $4, note = $5, uid = $6, modality = $7, frames = $8 WHERE pk = $9",
    )
    .bind(xsi_type)
    .bind(&attrs.scan_type)
    .bind(&attrs.series_description)
    .bind(&attrs.quality)
    .bind(&attrs.note)
    .bind(&attrs.uid)
    .bind(&attrs.modality)
    .bind(&attrs.frames)
    .bind(pk)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes resources (and their file rows) of one owner.
pub(super) async fn delete_resources_of(
    conn: &mut AnyConnection,
    owner: &Owner,
) -> Result<(), sqlx::Error> {
    let (kind, key) = (owner.kind(), owner.key());
    sqlx::query(
        "DELETE FROM files WHERE resource_id IN (SELECT id FROM resources WHERE owner_kind = $1 AND owner_key = $2)",
    )
    .bind(kind)
    .bind(&key)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM resources WHERE owner_kind = $1 AND owner_key = $2")
        .bind(kind)
        .bind(&key)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM custom_fields WHERE owner_kind = $1 AND owner_key = $2")
        .bind(kind)
        .bind(&key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn delete_experiment_rows(
    conn: &mut AnyConnection,
    experiment_id: &str,
) -> Result<(), sqlx::Error> {
    let scans = sqlx::query("SELECT pk FROM scans WHERE experiment_id = $1")
        .bind(experiment_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in scans {
        delete_resources_of(conn, &Owner::Scan(int(&row, "pk")?)).await?;
    }
    sqlx::query("DELETE FROM scans WHERE experiment_id = $1")
        .bind(experiment_id)
        .execute(&mut *conn)
        .await?;
    delete_resources_of(conn, &Owner::Experiment(experiment_id.to_owned())).await?;
    super::assessors::delete_assessors_of_session(conn, experiment_id).await?;
    sqlx::query("DELETE FROM experiment_shares WHERE experiment_id = $1")
        .bind(experiment_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM experiments WHERE id = $1")
        .bind(experiment_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    pub async fn create_subject(
        &self,
        site_id: &str,
        project: &str,
        label: &str,
        created_by: &str,
    ) -> Result<String, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let id = insert_subject(&mut tx, site_id, project, label, created_by).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn subject_by_id(&self, id: &str) -> Result<Option<Subject>, sqlx::Error> {
        let row = sqlx::query(SUBJECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subject_from).transpose()
    }

    pub async fn subject_by_label(
        &self,
        project: &str,
        label: &str,
    ) -> Result<Option<Subject>, sqlx::Error> {
        let row = sqlx::query(SUBJECT_BY_LABEL)
            .bind(project)
            .bind(label)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subject_from).transpose()
    }

    pub async fn subjects(&self, project: Option<&str>) -> Result<Vec<Subject>, sqlx::Error> {
        let rows = match project {
            Some(p) => {
                sqlx::query(SUBJECTS_OF_PROJECT)
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(ALL_SUBJECTS).fetch_all(&self.pool).await?,
        };
        rows.iter().map(subject_from).collect()
    }

    /// Renames a subject in its own project; fails with a unique violation
    /// when the label is taken there (owned or shared).
    pub async fn rename_subject(&self, id: &str, label: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT project FROM subjects WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let project = text(&row, "project")?;
        lock_project_labels(&mut tx, &project).await?;
        check_label_free(&mut tx, ShareKind::Subject, &project, label, id).await?;
        sqlx::query("UPDATE subjects SET label = $1 WHERE id = $2")
            .bind(label)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Deletes a subject, its experiments, scans, resources, file rows,
    /// custom variables and every share of them in one transaction.
    pub async fn delete_subject(&self, id: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let experiments = sqlx::query("SELECT id FROM experiments WHERE subject_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for row in experiments {
            delete_experiment_rows(&mut tx, &text(&row, "id")?).await?;
        }
        delete_resources_of(&mut tx, &Owner::Subject(id.to_owned())).await?;
        sqlx::query("DELETE FROM subject_shares WHERE subject_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subjects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_experiment(
        &self,
        site_id: &str,
        project: &str,
        subject_id: &str,
        label: &str,
        xsi_type: &str,
        attrs: &ExperimentAttrs,
        created_by: &str,
    ) -> Result<String, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let id = insert_experiment(
            &mut tx, site_id, project, subject_id, label, xsi_type, attrs, created_by,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn experiment_by_id(&self, id: &str) -> Result<Option<Experiment>, sqlx::Error> {
        let row = sqlx::query(EXPERIMENT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(experiment_from).transpose()
    }

    pub async fn experiment_by_label(
        &self,
        project: &str,
        label: &str,
    ) -> Result<Option<Experiment>, sqlx::Error> {
        let row = sqlx::query(EXPERIMENT_BY_LABEL)
            .bind(project)
            .bind(label)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(experiment_from).transpose()
    }

    /// Experiments of a subject, of a project, or of the whole site.
    pub async fn experiments(
        &self,
        project: Option<&str>,
        subject_id: Option<&str>,
    ) -> Result<Vec<Experiment>, sqlx::Error> {
        let rows = match (subject_id, project) {
            (Some(s), _) => {
                sqlx::query(EXPERIMENTS_OF_SUBJECT)
                    .bind(s)
                    .fetch_all(&self.pool)
                    .await?
            }
            (None, Some(p)) => {
                sqlx::query(EXPERIMENTS_OF_PROJECT)
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?
            }
            (None, None) => sqlx::query(ALL_EXPERIMENTS).fetch_all(&self.pool).await?,
        };
        rows.iter().map(experiment_from).collect()
    }

    pub async fn update_experiment(
        &self,
        id: &str,
        xsi_type: &str,
        attrs: &ExperimentAttrs,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE experiments SET xsi_type = $1, date = $2, time = $3, note = $4, modality = $5, uid = $6, session_type = $7 WHERE id = $8",
        )
        .bind(xsi_type)
        .bind(&attrs.date)
        .bind(&attrs.time)
        .bind(&attrs.note)
        .bind(&attrs.modality)
        .bind(&attrs.uid)
        .bind(&attrs.session_type)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Renames an experiment in its own project; fails with a unique
    /// violation when the label is taken there (owned or shared).
    pub async fn rename_experiment(&self, id: &str, label: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT project FROM experiments WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let project = text(&row, "project")?;
        lock_project_labels(&mut tx, &project).await?;
        check_label_free(&mut tx, ShareKind::Experiment, &project, label, id).await?;
        sqlx::query("UPDATE experiments SET label = $1 WHERE id = $2")
            .bind(label)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn delete_experiment(&self, id: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        delete_experiment_rows(&mut tx, id).await?;
        tx.commit().await
    }

    pub async fn scan(
        &self,
        experiment_id: &str,
        scan_id: &str,
    ) -> Result<Option<Scan>, sqlx::Error> {
        let row = sqlx::query(SCAN_BY_ID)
            .bind(experiment_id)
            .bind(scan_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(scan_from).transpose()
    }

    pub async fn scans(&self, experiment_id: &str) -> Result<Vec<Scan>, sqlx::Error> {
        let rows = sqlx::query(SCANS_OF_EXPERIMENT)
            .bind(experiment_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scan_from).collect()
    }

    /// Creates the scan or updates its attributes; returns its row key.
    pub async fn put_scan(
        &self,
        experiment_id: &str,
        scan_id: &str,
        xsi_type: &str,
        attrs: &ScanAttrs,
    ) -> Result<i64, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let pk = upsert_scan(&mut tx, experiment_id, scan_id, xsi_type, attrs).await?;
        tx.commit().await?;
        Ok(pk)
    }

    pub async fn delete_scan(&self, pk: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        delete_resources_of(&mut tx, &Owner::Scan(pk)).await?;
        sqlx::query("DELETE FROM scans WHERE pk = $1")
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Records a whole session (subject found by label or created,
    /// experiment, scans, resources, files) in one transaction that also
    /// commits the files' journal entries (see [`super::journal`]). Fails
    /// with a unique-constraint error when the experiment label is taken in
    /// the project.
    pub async fn create_session_with_scans(
        &self,
        site_id: &str,
        tree: &NewSessionTree,
        commit: &JournalCommit,
    ) -> Result<(String, String), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let subject_id = insert_subject(
            &mut tx,
            site_id,
            &tree.project,
            &tree.subject_label,
            &tree.created_by,
        )
        .await?;
        let experiment_id = insert_experiment(
            &mut tx,
            site_id,
            &tree.project,
            &subject_id,
            &tree.label,
            tree.xsi_type.as_str(),
            &tree.attrs,
            &tree.created_by,
        )
        .await?;
        for scan in &tree.scans {
            let pk = upsert_scan(
                &mut tx,
                &experiment_id,
                &scan.scan_id,
                scan.xsi_type.as_str(),
                &scan.attrs,
            )
            .await?;
            let (resource_id, _) = insert_resource(
                &mut tx,
                &Owner::Scan(pk),
                &tree.project,
                &scan.resource_label,
                &scan.resource_format,
                &scan.resource_content,
                "",
                &scan.resource_dir,
            )
            .await?;
            insert_files(&mut tx, resource_id, &scan.files).await?;
        }
        mark_committed(&mut tx, self.instance(), commit).await?;
        tx.commit().await?;
        Ok((subject_id, experiment_id))
    }
}
