//! STOW-RS without HTTP: instances already spooled to the staging folder
//! are stored through the import pipeline the import service and the
//! C-STORE receiver use (routing rules, the caller's rights, prearchive or
//! archive per project setting), one study at a time so a study is stored
//! whole or not at all. An RTSTRUCT or SEG that refers to a session the
//! caller may write becomes an `icr:roiCollectionData` assessor of that
//! session holding the file, as the XNAT OHIF viewer saves ROIs. The answer
//! is the standard one: a ReferencedSOPSequence of what was stored and a
//! FailedSOPSequence with a FailureReason for the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use serde_json::{Map, Value as Json, json};
use sha2::Digest;
use xnatkit_dicom::{DicomHeader, InstanceRef};
use xnatkit_model::AssessorType;

use super::json::{PIXEL_DATA, attr};
use super::qido::Base;
use crate::access::Action;
use crate::archive::{Actor, Error, Result, assessors, outputs, project_access};
use crate::import::pipeline::ProjectScope;
use crate::import::{ImportOptions, import_instances_in};
use crate::store::StudyRow;

/// Failure reasons (PS3.4 / PS3.18 STOW-RS).
pub mod reason {
    /// Processing failure.
    pub const PROCESSING: u16 = 0x0110;
    /// The SOP instance is stored already.
    pub const DUPLICATE: u16 = 0x0111;
    /// Refused: the caller may not store here.
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    /// The data set cannot be understood (not DICOM).
    pub const UNREADABLE: u16 = 0xC000;
    /// The instance belongs to another study than the request names.
    pub const STUDY_MISMATCH: u16 = 0xC409;
}

/// One part of the request, spooled.
#[derive(Debug, Clone)]
pub struct Part {
    pub path: PathBuf,
}

/// What happened to the request's instances.
#[derive(Debug, Default)]
pub struct Outcome {
    /// (SOP class, SOP instance, study UID, series UID, retrievable here?)
    pub stored: Vec<(String, String, String, String, bool)>,
    /// (SOP class, SOP instance, failure reason)
    pub failed: Vec<(String, String, u16)>,
    /// URIs of sessions and assessors written.
    pub written: Vec<String>,
}

impl Outcome {
    /// The HTTP status the standard gives this outcome.
    pub fn status(&self) -> u16 {
        match (self.stored.is_empty(), self.failed.is_empty()) {
            (_, true) => 200,
            (true, false) => 409,
            (false, false) => 202,
        }
    }

    /// The response body in the DICOM JSON model.
    pub fn to_json(&self, base: &Base<'_>, study_uid: Option<&str>) -> Json {
        let mut out = Map::new();
        if let Some(uid) = study_uid {
            attr(&mut out, "00081190", "UR", &base.study(uid));
        }
        if !self.stored.is_empty() {
            let items: Vec<Json> = self
                .stored
                .iter()
                .map(|(class, sop, study, series, retrievable)| {
                    let mut item = Map::new();
                    attr(&mut item, "00081150", "UI", class);
                    attr(&mut item, "00081155", "UI", sop);
                    if *retrievable {
                        attr(
                            &mut item,
                            "00081190",
                            "UR",
                            &base.instance(study, series, sop),
                        );
                    }
                    Json::Object(item)
                })
                .collect();
            out.insert("00081199".to_owned(), json!({ "vr": "SQ", "Value": items }));
        }
        if !self.failed.is_empty() {
            let items: Vec<Json> = self
                .failed
                .iter()
                .map(|(class, sop, reason)| {
                    let mut item = Map::new();
                    attr(&mut item, "00081150", "UI", class);
                    attr(&mut item, "00081155", "UI", sop);
                    item.insert(
                        "00081197".to_owned(),
                        json!({ "vr": "US", "Value": [reason] }),
                    );
                    Json::Object(item)
                })
                .collect();
            out.insert("00081198".to_owned(), json!({ "vr": "SQ", "Value": items }));
        }
        Json::Object(out)
    }
}

const ROI_MODALITIES: [&str; 2] = ["RTSTRUCT", "SEG"];
const REFERENCED_FRAME_OF_REFERENCE: Tag = Tag(0x3006, 0x0010);
const RT_REFERENCED_STUDY: Tag = Tag(0x3006, 0x0012);
const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
const REFERENCED_SERIES: Tag = Tag(0x0008, 0x1115);
const SERIES_INSTANCE_UID: Tag = Tag(0x0020, 0x000E);
const STRUCTURE_SET_LABEL: Tag = Tag(0x3006, 0x0002);
const SERIES_DESCRIPTION: Tag = Tag(0x0008, 0x103E);

fn text_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    // `get`: a missing element's error (`element`) captures a backtrace.
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .filter(|s| !s.is_empty())
}

fn items(obj: &InMemDicomObject, tag: Tag) -> Vec<InMemDicomObject> {
    obj.get(tag)
        .and_then(|e| e.items().map(<[InMemDicomObject]>::to_vec))
        .unwrap_or_default()
}

/// What an ROI object points at: study UIDs (its RT referenced studies,
/// then its own) and series UIDs (a SEG's referenced series).
#[derive(Debug, Default)]
struct RoiRefs {
    studies: Vec<String>,
    series: Vec<String>,
    name: String,
}

fn roi_refs(path: &Path, header: &DicomHeader) -> RoiRefs {
    let mut refs = RoiRefs::default();
    if let Ok(obj) = OpenFileOptions::new()
        .read_until(PIXEL_DATA)
        .open_file(path)
    {
        for frame in items(&obj, REFERENCED_FRAME_OF_REFERENCE) {
            for study in items(&frame, RT_REFERENCED_STUDY) {
                if let Some(uid) = text_of(&study, REFERENCED_SOP_INSTANCE_UID) {
                    refs.studies.push(uid);
                }
            }
        }
        for series in items(&obj, REFERENCED_SERIES) {
            if let Some(uid) = text_of(&series, SERIES_INSTANCE_UID) {
                refs.series.push(uid);
            }
        }
        refs.name = text_of(&obj, STRUCTURE_SET_LABEL)
            .or_else(|| text_of(&obj, SERIES_DESCRIPTION))
            .unwrap_or_default();
    }
    refs.studies.push(header.study_instance_uid.clone());
    refs
}

/// The archived session an ROI object belongs to, if it refers to one the
/// caller can see (in `project` when the request names one).
async fn roi_target(
    actor: &Actor<'_>,
    project: Option<&str>,
    refs: &RoiRefs,
) -> Result<Option<StudyRow>> {
    for uid in &refs.studies {
        let found = super::visible_studies(actor, project, Some(uid)).await?;
        if let Some(study) = found.into_iter().next() {
            return Ok(Some(study));
        }
    }
    if !refs.series.is_empty() {
        let store = actor.state.store();
        for study in super::visible_studies(actor, project, None).await? {
            let series = store.dicom_series(Some(&study.experiment_id)).await?;
            if series.iter().any(|s| refs.series.contains(&s.series_uid)) {
                return Ok(Some(study));
            }
        }
    }
    Ok(None)
}

/// A label for the ROI collection of one SOP instance: stable, so a
/// second STOW of the same object is recognised as a duplicate.
fn roi_label(session_label: &str, kind: &str, sop_uid: &str) -> String {
    let digest = sha2::Sha256::digest(sop_uid.as_bytes());
    format!("{session_label}_{kind}_{}", &hex::encode(digest)[..10])
}

/// Stores an ROI object as an assessor of `study`'s session.
async fn store_roi(
    actor: &Actor<'_>,
    study: &StudyRow,
    header: &DicomHeader,
    kind: &str,
    refs: &RoiRefs,
    path: &Path,
) -> std::result::Result<String, u16> {
    let state = actor.state;
    let store = state.store();
    let fail = |err: Error| {
        tracing::warn!("STOW-RS: storing {kind} {}: {err}", header.sop_instance_uid);
        match err {
            Error::Forbidden(_) | Error::NotLoggedIn(_) | Error::NotFound(_) => {
                reason::NOT_AUTHORIZED
            }
            Error::Conflict(_) => reason::DUPLICATE,
            _ => reason::PROCESSING,
        }
    };
    let project = store
        .project(&study.project)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or(reason::PROCESSING)?;
    project_access(actor, &project)
        .await
        .map_err(fail)?
        .check(Action::Create, &format!("project {}", project.id))
        .map_err(fail)?;
    let session = store
        .experiment_by_id(&study.experiment_id)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or(reason::PROCESSING)?;
    let label = roi_label(&session.label, kind, &header.sop_instance_uid);
    let user = actor.caller.require_user().map_err(fail)?;
    let mut fields = BTreeMap::new();
    fields.insert("collectionType".to_owned(), kind.to_owned());
    if !refs.name.is_empty() {
        fields.insert("name".to_owned(), refs.name.clone());
    }
    fields.insert(
        "description".to_owned(),
        format!("{kind} stored through STOW-RS"),
    );
    fields.insert("subjectID".to_owned(), session.subject_id.clone());
    let id = assessors::create(
        actor,
        &session,
        &label,
        AssessorType::RoiCollection,
        &fields,
        "",
        &user.username,
    )
    .await
    .map_err(fail)?;
    // The file goes in through the outputs path (journaled, all or nothing).
    let staged = path.with_extension("roi.d");
    let filed = async {
        tokio::fs::create_dir_all(&staged)
            .await
            .map_err(|e| Error::Internal(format!("staging {}: {e}", staged.display())))?;
        tokio::fs::rename(
            path,
            staged.join(format!("{}.dcm", header.sop_instance_uid)),
        )
        .await
        .map_err(|e| Error::Internal(format!("staging {}: {e}", path.display())))?;
        let parent = format!("/data/experiments/{}/assessors/{}", session.id, id);
        outputs::attach(
            actor,
            &outputs::OutputResource {
                parent_uri: &parent,
                label: kind,
                format: "DICOM",
                content: kind,
                tags: "",
                staged: &staged,
                glob: None,
                overwrite: false,
            },
        )
        .await?;
        Ok::<_, Error>(parent)
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&staged).await;
    match filed {
        Ok(uri) => Ok(uri),
        Err(err) => {
            if let Ok(Some(assessor)) = store.assessor_by_id(&id).await
                && let Err(e) = assessors::remove(actor, &assessor).await
            {
                tracing::warn!("STOW-RS: taking back assessor {id}: {e}");
            }
            Err(fail(err))
        }
    }
}

/// Stores the spooled parts. `project` and `study_uid` come from the
/// request path; instances of another study than `study_uid` fail.
pub async fn store(
    actor: &Actor<'_>,
    project: Option<&str>,
    study_uid: Option<&str>,
    parts: Vec<Part>,
) -> Result<Outcome> {
    actor.caller.require_user()?;
    // Invisible projects are "not found" before anything is read.
    let project = match project {
        Some(p) => Some(super::readable_project(actor, p).await?),
        None => None,
    };
    let project = project.as_deref();
    let paths: Vec<PathBuf> = parts.iter().map(|p| p.path.clone()).collect();
    let headers =
        tokio::task::spawn_blocking(move || xnatkit_dicom::read_headers_parallel(&paths, 2))
            .await
            .map_err(|e| Error::Internal(format!("header reader failed: {e}")))?;
    let mut outcome = Outcome::default();
    let store = actor.state.store();
    let mut by_study: BTreeMap<String, Vec<InstanceRef>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (path, header) in headers {
        let header = match header {
            Ok(h) if !h.sop_instance_uid.is_empty() => h,
            _ => {
                outcome
                    .failed
                    .push((String::new(), String::new(), reason::UNREADABLE));
                continue;
            }
        };
        let ids = (
            header.sop_class_uid.clone(),
            header.sop_instance_uid.clone(),
        );
        if study_uid.is_some_and(|u| u != header.study_instance_uid) {
            outcome.failed.push((ids.0, ids.1, reason::STUDY_MISMATCH));
            continue;
        }
        if !seen.insert(header.sop_instance_uid.clone()) {
            outcome.failed.push((ids.0, ids.1, reason::DUPLICATE));
            continue;
        }
        let modality = header.effective_modality().unwrap_or_default();
        if ROI_MODALITIES.contains(&modality.as_str()) {
            let refs = roi_refs(&path, &header);
            if let Some(target) = roi_target(actor, project, &refs).await? {
                match store_roi(actor, &target, &header, &modality, &refs, &path).await {
                    Ok(uri) => {
                        outcome.written.push(uri);
                        outcome.stored.push((
                            ids.0,
                            ids.1,
                            header.study_instance_uid.clone(),
                            header.series_instance_uid.clone(),
                            false,
                        ));
                    }
                    Err(code) => outcome.failed.push((ids.0, ids.1, code)),
                }
                continue;
            }
        }
        if store
            .dicom_sop_instance_exists(&header.sop_instance_uid, project)
            .await?
        {
            outcome.failed.push((ids.0, ids.1, reason::DUPLICATE));
            continue;
        }
        by_study
            .entry(header.study_instance_uid.clone())
            .or_default()
            .push(InstanceRef { path, header });
    }
    let scope = match project {
        Some(p) => ProjectScope::Only(p.to_owned()),
        None => ProjectScope::Any,
    };
    let mut options = ImportOptions {
        source: "STOW-RS".to_owned(),
        ..ImportOptions::default()
    };
    options.hints.project = project.map(str::to_owned);
    for (uid, instances) in by_study {
        let result = import_instances_in(
            actor.state,
            actor.caller,
            &options,
            &scope,
            instances.clone(),
        )
        .await;
        match result {
            Ok(uris) => {
                let archived = uris.iter().any(|u| u.starts_with("/data/archive/"));
                outcome.written.extend(uris);
                for i in instances {
                    outcome.stored.push((
                        i.header.sop_class_uid,
                        i.header.sop_instance_uid,
                        uid.clone(),
                        i.header.series_instance_uid,
                        archived,
                    ));
                }
            }
            Err(err) => {
                tracing::warn!("STOW-RS: storing study {uid}: {err}");
                let code = match err {
                    Error::Forbidden(_) | Error::NotLoggedIn(_) | Error::NotFound(_) => {
                        reason::NOT_AUTHORIZED
                    }
                    Error::Conflict(_) => reason::DUPLICATE,
                    _ => reason::PROCESSING,
                };
                for i in instances {
                    outcome
                        .failed
                        .push((i.header.sop_class_uid, i.header.sop_instance_uid, code));
                }
            }
        }
    }
    Ok(outcome)
}
