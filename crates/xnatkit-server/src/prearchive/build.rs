//! (Re)building a prearchive session from what its folder holds: one scan
//! per `SCANS/{id}` folder, values from the instances' headers. The folder
//! is the truth; the rows are an index that a rebuild can always recreate.

use std::path::{Path, PathBuf};

use xnatkit_dicom::{
    InstanceRef, RoutingHints, SessionKind, SortedScan, SortedStudy, sort_instances,
};

use super::{session_dir, status};
use crate::archive::Error;
use crate::import::archive::{xnat_date, xnat_time};
use crate::state::AppState;
use crate::store::{PrearchiveScan, PrearchiveSession, PrearchiveSessionMeta};

/// Regular files directly in `dir` (0 when it does not exist).
pub fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .count()
        })
        .unwrap_or(0)
}

/// The files of a session: `(scan ID, resource label, path)` for every
/// file below `SCANS/{scan}/{resource}/`, sorted.
pub fn session_files(session_dir: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(scans) = std::fs::read_dir(session_dir.join("SCANS")) else {
        return out;
    };
    for scan in scans.filter_map(Result::ok) {
        let scan_id = scan.file_name().to_string_lossy().into_owned();
        let Ok(resources) = std::fs::read_dir(scan.path()) else {
            continue;
        };
        for resource in resources.filter_map(Result::ok) {
            let label = resource.file_name().to_string_lossy().into_owned();
            let Ok(files) = std::fs::read_dir(resource.path()) else {
                continue;
            };
            for file in files.filter_map(Result::ok) {
                if file.file_type().is_ok_and(|t| t.is_file())
                    && !file.file_name().to_string_lossy().starts_with('.')
                {
                    out.push((scan_id.clone(), label.clone(), file.path()));
                }
            }
        }
    }
    out.sort();
    out
}

/// The prearchive row of a freshly sorted scan.
pub fn scan_row(scan: &SortedScan) -> PrearchiveScan {
    PrearchiveScan {
        scan_id: scan.id.clone(),
        series_uid: scan.series_instance_uid.clone(),
        xsi_type: scan.xsi_type.to_owned(),
        scan_type: scan.scan_type.clone(),
        series_description: scan.series_description.clone(),
        modality: scan.modality.clone(),
        frames: i64::try_from(scan.frames).unwrap_or(i64::MAX),
    }
}

/// Session values of a sorted study.
pub fn meta_of_study(study: &SortedStudy) -> PrearchiveSessionMeta {
    PrearchiveSessionMeta {
        subject: study.route.subject.clone().unwrap_or_default(),
        xsi_type: study.session_xsi_type.to_owned(),
        modality: study.modality.clone().unwrap_or_default(),
        scan_date: xnat_date(study.date.as_deref()),
        scan_time: xnat_time(study.time.as_deref()),
        session_type: study.study_description.clone().unwrap_or_default(),
    }
}

/// Reads the headers of every DICOM file of a session (blocking work on the
/// blocking pool). Files that do not parse are left out.
pub async fn session_instances(dir: PathBuf) -> Result<Vec<(String, InstanceRef)>, Error> {
    tokio::task::spawn_blocking(move || {
        let files: Vec<(String, String, PathBuf)> = session_files(&dir)
            .into_iter()
            .filter(|(_, label, _)| label == "DICOM")
            .collect();
        let paths: Vec<PathBuf> = files.iter().map(|(_, _, p)| p.clone()).collect();
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let headers = xnatkit_dicom::read_headers_parallel(&paths, jobs);
        files
            .into_iter()
            .zip(headers)
            .filter_map(|((scan, _, _), (path, header))| {
                header
                    .ok()
                    .map(|header| (scan, InstanceRef { path, header }))
            })
            .collect()
    })
    .await
    .map_err(|e| Error::Internal(format!("reading prearchive headers failed: {e}")))
}

/// Rebuilds the rows of `session` from its folder; READY when it holds
/// DICOM, ERROR when it holds none.
pub async fn rebuild(state: &AppState, session: &PrearchiveSession) -> Result<(), Error> {
    let store = state.store();
    store
        .set_prearchive_status(session.id, status::BUILDING, "")
        .await?;
    let instances = session_instances(session_dir(state, session)).await?;
    if instances.is_empty() {
        store
            .set_prearchive_status(
                session.id,
                status::ERROR,
                "the session folder holds no readable DICOM",
            )
            .await?;
        return Ok(());
    }
    let mut by_scan: std::collections::BTreeMap<String, Vec<InstanceRef>> = Default::default();
    for (scan, instance) in &instances {
        by_scan
            .entry(scan.clone())
            .or_default()
            .push(instance.clone());
    }
    let mut rows: Vec<PrearchiveScan> = by_scan
        .into_iter()
        .map(|(scan_id, members)| {
            let first = &members[0].header;
            let modality = first
                .effective_modality()
                .unwrap_or_else(|| "OT".to_owned());
            let description = first.series_description.clone().unwrap_or_default();
            PrearchiveScan {
                scan_id,
                series_uid: first.series_instance_uid.clone(),
                xsi_type: SessionKind::scan_xsi_type_for(&first.sop_class_uid, &modality)
                    .to_owned(),
                scan_type: description.clone(),
                series_description: description,
                modality,
                frames: members
                    .iter()
                    .map(|m| m.header.number_of_frames.filter(|n| *n > 0).unwrap_or(1))
                    .sum(),
            }
        })
        .collect();
    rows.sort_by(|a, b| xnatkit_dicom::compare_scan_ids(&a.scan_id, &b.scan_id));
    let all: Vec<InstanceRef> = instances.into_iter().map(|(_, i)| i).collect();
    let hints = RoutingHints {
        subject: (!session.subject.is_empty()).then(|| session.subject.clone()),
        session: Some(session.folder.clone()),
        project: None,
    };
    let mut meta = sort_instances(all, &hints)
        .first()
        .map(meta_of_study)
        .unwrap_or_default();
    if !session.subject.is_empty() {
        meta.subject = session.subject.clone();
    }
    store
        .write_prearchive_build(session.id, &meta, &rows, status::READY)
        .await?;
    Ok(())
}
