//! Writing one study into the archive: files moved into
//! `archive/{P}/arc001/{label}/SCANS/{scan}/DICOM/{name}` and the subject,
//! session, scans, `DICOM` resources and file rows (with MD5) recorded in one
//! transaction. An existing session is merged into only when `overwrite`
//! allows it (see [`super::options::Overwrite`] for XNAT's values). On any failure the files are moved
//! back to where they came from, so the caller can keep them elsewhere.
//!
//! Files and rows change together through the file-move journal
//! ([`crate::file_moves`], protocol in [`crate::store::journal`]): files are
//! moved under in-flight names (journaled as pending), the rows committed
//! with the journal, then the files renamed into place. A crash anywhere in
//! between is rolled back or forward by start-up recovery, so an
//! `overwrite=delete` re-import never leaves a listed file whose bytes are
//! not the ones its digest describes.

use std::path::PathBuf;

use xnatkit_dicom::{ExistingSession, InstanceRef, SortedScan, SortedStudy, scan_instances_into};
use xnatkit_model::XsiType;

use super::options::Overwrite;
use crate::archive::Error;
use crate::file_moves::MoveBatch;
use crate::state::AppState;
use crate::store::{
    ExperimentAttrs, NewFile, NewScanTree, NewSessionTree, ScanAttrs, ScanDicomFields,
    SessionDicomFields, is_unique_violation,
};

/// Where a study goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTarget {
    /// Canonical project ID.
    pub project: String,
    pub subject: String,
    pub label: String,
}

/// Why a study was not archived; the source files are untouched either way.
#[derive(Debug)]
pub enum ArchiveError {
    /// XNAT's 409 family: the session exists and may not be merged as asked.
    Conflict(String),
    Failed(Error),
}

impl From<sqlx::Error> for ArchiveError {
    fn from(err: sqlx::Error) -> Self {
        Self::Failed(err.into())
    }
}

impl From<Error> for ArchiveError {
    fn from(err: Error) -> Self {
        Self::Failed(err)
    }
}

/// The resource label XNAT gives imported DICOM.
pub const DICOM_RESOURCE: &str = "DICOM";

/// `YYYYMMDD` → `YYYY-MM-DD` (XNAT's date form); other text is kept.
pub fn xnat_date(dicom: Option<&str>) -> String {
    match dicom {
        Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
        }
        Some(d) => d.to_owned(),
        None => String::new(),
    }
}

/// `HHMMSS[.ffffff]` → `HH:MM:SS`; other text is kept.
pub fn xnat_time(dicom: Option<&str>) -> String {
    match dicom {
        Some(t) if t.len() >= 6 && t[..6].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}:{}:{}", &t[..2], &t[2..4], &t[4..6])
        }
        Some(t) => t.to_owned(),
        None => String::new(),
    }
}

struct PlannedFile {
    source: PathBuf,
    dest: PathBuf,
}

struct PlannedScan {
    scan: SortedScan,
    resource_dir: String,
    files: Vec<PlannedFile>,
}

/// Archives `instances` (sorted as `study`) into `target`. Scan IDs of a new
/// session follow `preferred` where it names a series (a prearchive
/// session's IDs), else `study`. Returns the session's `/data/archive` URI.
pub async fn archive_study(
    state: &AppState,
    created_by: &str,
    target: &ArchiveTarget,
    instances: &[InstanceRef],
    study: &SortedStudy,
    preferred: &ExistingSession,
    overwrite: Overwrite,
) -> Result<String, ArchiveError> {
    let _guard = state
        .store()
        .locks()
        .lock(&format!(
            "archive/{}/{}",
            target.project,
            target.label.to_ascii_lowercase()
        ))
        .await?;
    let store = state.store();
    let existing = store
        .experiment_by_label(&target.project, &target.label)
        .await?;
    if existing.is_none() {
        // Labels of data shared into the project are taken there too; the
        // shared objects themselves are only changed in their own project.
        if let Some((shared, _)) = store
            .shared_experiment_by_label(&target.project, &target.label)
            .await?
        {
            return Err(ArchiveError::Conflict(format!(
                "Session label {} in project {} belongs to session {} shared from project {}; choose another session label",
                target.label, target.project, shared.id, shared.project
            )));
        }
        if store
            .subject_by_label(&target.project, &target.subject)
            .await?
            .is_none()
            && let Some((shared, _)) = store
                .shared_subject_by_label(&target.project, &target.subject)
                .await?
        {
            return Err(ArchiveError::Conflict(format!(
                "Subject label {} in project {} belongs to subject {} shared from project {}; archive the session in project {} or choose another subject label",
                target.subject, target.project, shared.id, shared.project, shared.project
            )));
        }
    }
    let session_xsi = XsiType::parse(study.session_xsi_type)
        .filter(|t| t.is_session())
        .unwrap_or(XsiType::OtherDicomSession);
    let mut subject_label = target.subject.clone();
    let scans: Vec<SortedScan> = match &existing {
        None if preferred.scan_ids.is_empty() => study.scans.clone(),
        None => scan_instances_into(preferred, instances.to_vec()),
        Some(experiment) => {
            if overwrite == Overwrite::None {
                return Err(ArchiveError::Conflict(format!(
                    "Session {} already exists in project {}; retry with overwrite=append to merge or overwrite=delete to replace files",
                    target.label, target.project
                )));
            }
            if let Some(subject) = store.subject_by_id(&experiment.subject_id).await? {
                if !subject.label.eq_ignore_ascii_case(&target.subject) {
                    return Err(ArchiveError::Conflict(format!(
                        "Session {} already exists in project {} for another subject ({}); choose another session label",
                        target.label, target.project, subject.label
                    )));
                }
                subject_label = subject.label;
            }
            if !experiment.attrs.uid.is_empty()
                && experiment.attrs.uid != study.study_instance_uid
                && overwrite != Overwrite::Replace
            {
                return Err(ArchiveError::Conflict(format!(
                    "Session {} holds study {}, not {}; use another session label or overwrite=delete",
                    target.label, experiment.attrs.uid, study.study_instance_uid
                )));
            }
            if XsiType::parse(&experiment.xsi_type) != Some(session_xsi) {
                return Err(ArchiveError::Conflict(format!(
                    "Session {} is a {}, the upload is a {}; data may require a manual merge",
                    target.label, experiment.xsi_type, study.session_xsi_type
                )));
            }
            let mut known = ExistingSession::default();
            for scan in store.scans(&experiment.id).await? {
                if scan.attrs.uid.is_empty() {
                    known.other_scan_ids.insert(scan.scan_id);
                } else {
                    known.scan_ids.insert(scan.attrs.uid, scan.scan_id);
                }
            }
            scan_instances_into(&known, instances.to_vec())
        }
    };

    let mut planned = Vec::with_capacity(scans.len());
    for scan in &scans {
        let existing_dir = match &existing {
            Some(experiment) => match store.scan(&experiment.id, &scan.id).await? {
                Some(row) => store.scan_resource_dir(row.pk, DICOM_RESOURCE).await?,
                None => None,
            },
            None => None,
        };
        let resource_dir = match existing_dir {
            Some(dir) => dir,
            None => {
                let base = format!(
                    "{}/arc001/{}/SCANS/{}/{DICOM_RESOURCE}",
                    target.project, target.label, scan.id
                );
                let mut candidate = base.clone();
                let mut n = 1;
                while store.resource_dir_in_use(&candidate).await? {
                    candidate = format!("{base}_{n}");
                    n += 1;
                }
                candidate
            }
        };
        let root = state.archive_root().join(&resource_dir);
        let mut files = Vec::with_capacity(scan.files.len());
        for file in &scan.files {
            let dest = root.join(&file.stored_name);
            if dest.exists() && overwrite != Overwrite::Replace {
                return Err(ArchiveError::Conflict(format!(
                    "file {} already exists in scan {} of session {}; use overwrite=delete to replace it",
                    file.stored_name, scan.id, target.label
                )));
            }
            files.push(PlannedFile {
                source: file.source.clone(),
                dest,
            });
        }
        planned.push(PlannedScan {
            scan: scan.clone(),
            resource_dir,
            files,
        });
    }

    let new_session = existing.is_none().then(|| NewSessionTree {
        project: target.project.clone(),
        subject_label: subject_label.clone(),
        label: target.label.clone(),
        xsi_type: session_xsi,
        attrs: ExperimentAttrs {
            date: xnat_date(study.date.as_deref()),
            time: xnat_time(study.time.as_deref()),
            note: String::new(),
            modality: study.modality.clone().unwrap_or_default(),
            uid: study.study_instance_uid.clone(),
            session_type: study.study_description.clone().unwrap_or_default(),
            dicom: session_dicom_fields(study, session_xsi),
        },
        scans: Vec::new(),
        created_by: created_by.to_owned(),
    });
    let merge_into = existing.map(|e| e.id);
    // Its own task: a request dropped by its client must not stop the
    // writing half-way (files under in-flight names until the next start).
    state
        .spawn(commit_study(
            state.clone(),
            planned,
            new_session,
            merge_into,
            target.clone(),
        ))
        .await
        .map_err(|e| Error::Internal(format!("archive writer failed: {e}")))??;
    drop(_guard);
    // DICOMweb answers from per-instance rows: record them now, while the
    // files are fresh in the page cache (a failure only costs a later read).
    if let Ok(Some(session)) = store
        .experiment_by_label(&target.project, &target.label)
        .await
    {
        crate::dicomweb::index::index_session_logged(state, &session.id).await;
    }
    // Runs on archive: every archiving path ends here, so the project's
    // subscriptions see each archived session exactly once per archiving.
    crate::engine::events::session_archived(state, &target.project, &target.label).await;
    crate::archive_email::session_archived(state, &target.project, &target.label).await;
    Ok(format!(
        "/data/archive/projects/{}/subjects/{}/experiments/{}",
        target.project, subject_label, target.label
    ))
}

/// Moves the planned files and records the session (new, or merged into
/// `merge_into`) through the file-move journal: all or nothing.
async fn commit_study(
    state: AppState,
    planned: Vec<PlannedScan>,
    new_session: Option<NewSessionTree>,
    merge_into: Option<String>,
    target: ArchiveTarget,
) -> Result<(), ArchiveError> {
    let store = state.store();
    let mut batch = MoveBatch::new(state.data_dir());
    for file in planned.iter().flat_map(|p| p.files.iter()) {
        batch.add_move(file.source.clone(), file.dest.clone(), None);
    }
    let digests = batch.stage(store).await?;

    let trees: Vec<NewScanTree> = planned
        .iter()
        .map(|p| {
            let files = p
                .files
                .iter()
                .map(|f| {
                    let (size, md5) = digests.get(&f.dest).cloned().unwrap_or_default();
                    NewFile {
                        path: f
                            .dest
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        size,
                        md5,
                        format: DICOM_RESOURCE.to_owned(),
                        content: String::new(),
                        tags: String::new(),
                    }
                })
                .collect();
            scan_tree(&p.scan, &p.resource_dir, files)
        })
        .collect();

    let commit = batch.commit_record();
    let recorded = match (new_session, &merge_into) {
        (Some(mut tree), _) => {
            tree.scans = trees;
            store
                .create_session_with_scans(&state.config().site_id, &tree, &commit)
                .await
                .map(|_| ())
        }
        (None, Some(experiment_id)) => {
            store
                .merge_scans_into_experiment(experiment_id, &target.project, &trees, &commit)
                .await
        }
        (None, None) => {
            batch.abort(store).await;
            return Err(ArchiveError::Failed(Error::Internal(
                "archive plan names neither a new nor an existing session".to_owned(),
            )));
        }
    };
    if let Err(err) = recorded {
        batch.abort(store).await;
        return Err(if is_unique_violation(&err) {
            ArchiveError::Conflict(format!(
                "Session {} was created in project {} by another request meanwhile; retry with overwrite=append",
                target.label, target.project
            ))
        } else {
            ArchiveError::Failed(err.into())
        });
    }
    // The rows are committed: from here on the import is done, and a
    // failure to rename is finished by start-up recovery.
    if let Err(err) = batch.finish(store).await {
        tracing::error!(
            "session {} of project {} is recorded but its files are not all in place yet ({err}); restart the server to complete them",
            target.label,
            target.project
        );
    }
    Ok(())
}

/// The session's header fields as XNAT names them (`scanner` is the
/// StationName, `acquisition_site` the InstitutionName).
fn session_dicom_fields(study: &SortedStudy, session_xsi: XsiType) -> SessionDicomFields {
    let get = |v: &Option<String>| v.clone().unwrap_or_default();
    SessionDicomFields {
        scanner: get(&study.scanner),
        scanner_manufacturer: get(&study.manufacturer),
        scanner_model: get(&study.model),
        operator: get(&study.operator),
        acquisition_site: get(&study.institution),
        accession_number: get(&study.accession_number),
        patient_id: get(&study.patient_id),
        patient_name: get(&study.patient_name),
        // Only mrSessionData has fieldStrength in XNAT's schema.
        field_strength: if session_xsi == XsiType::MrSession {
            get(&study.field_strength)
        } else {
            String::new()
        },
    }
}

fn scan_tree(scan: &SortedScan, resource_dir: &str, files: Vec<NewFile>) -> NewScanTree {
    NewScanTree {
        scan_id: scan.id.clone(),
        xsi_type: XsiType::parse(scan.xsi_type)
            .filter(|t| t.is_scan())
            .unwrap_or(XsiType::OtherDicomScan),
        attrs: ScanAttrs {
            scan_type: scan.scan_type.clone(),
            series_description: scan.series_description.clone(),
            uid: scan.series_instance_uid.clone(),
            modality: scan.modality.clone(),
            frames: scan.frames.to_string(),
            dicom: ScanDicomFields {
                scanner: scan.scanner.clone().unwrap_or_default(),
                scanner_manufacturer: scan.manufacturer.clone().unwrap_or_default(),
                scanner_model: scan.model.clone().unwrap_or_default(),
                start_time: xnat_time(scan.start_time.as_deref()),
                body_part_examined: scan.body_part.clone().unwrap_or_default(),
                // The series' modality is the closest header value to XNAT's
                // series class; the sorter already resolved it (OT fallback).
                series_class: scan.modality.clone(),
            },
            ..ScanAttrs::default()
        },
        resource_label: DICOM_RESOURCE.to_owned(),
        resource_format: DICOM_RESOURCE.to_owned(),
        resource_content: "RAW".to_owned(),
        resource_dir: resource_dir.to_owned(),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_in_xnat_form() {
        assert_eq!(xnat_date(Some("20240131")), "2024-01-31");
        assert_eq!(xnat_date(None), "");
        assert_eq!(xnat_time(Some("101500.123")), "10:15:00");
        assert_eq!(xnat_time(Some("10")), "10");
    }
}
