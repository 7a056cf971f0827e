//! DICOMweb (QIDO-RS, WADO-RS, WADO-URI, STOW-RS) over the archive, without
//! HTTP: viewers and other archives speak DICOMweb, not XNAT's REST API, so
//! the same sessions are offered a second way. Visibility is decided by the
//! same [`crate::access`] rules as the REST API ([`visible_studies`]);
//! searches answer from database rows ([`index`] keeps the per-instance
//! rows), retrieval streams the stored files, and storing goes through the
//! import pipeline the import service and the C-STORE receiver use.

pub mod index;
pub mod json;
pub mod qido;
pub mod stow;
pub mod wado;

use std::collections::{HashMap, HashSet};

use crate::archive::{Actor, Error, Result, project_access};
use crate::store::{StudyFilter, StudyRow};

/// The studies (sessions with a Study Instance UID) the caller may read:
/// site-wide, or through one project (`project`: owned there or shared
/// into it). A project the caller may not read is "not found", as in the
/// REST API.
pub async fn visible_studies(
    actor: &Actor<'_>,
    project: Option<&str>,
    study_uid: Option<&str>,
) -> Result<Vec<StudyRow>> {
    let filter = StudyFilter {
        study_uid: study_uid.unwrap_or_default().to_owned(),
        ..StudyFilter::default()
    };
    visible_studies_matching(actor, project, &filter).await
}

/// [`visible_studies`] narrowed by the database first (the caller still
/// matches every key).
pub async fn visible_studies_matching(
    actor: &Actor<'_>,
    project: Option<&str>,
    filter: &StudyFilter,
) -> Result<Vec<StudyRow>> {
    let store = actor.state.store();
    let readable = readable_projects(actor, project).await?;
    let mut shared: HashMap<String, Vec<String>> = HashMap::new();
    for (experiment, into) in store.experiment_share_pairs().await? {
        shared.entry(experiment).or_default().push(into);
    }
    let studies = store.dicom_studies(filter).await?;
    Ok(studies
        .into_iter()
        .filter(|s| {
            readable.contains(&s.project)
                || shared
                    .get(&s.experiment_id)
                    .is_some_and(|into| into.iter().any(|p| readable.contains(p)))
        })
        .collect())
}

/// The projects whose data the caller may read: `project` alone (if it
/// may), or every such project of the site.
pub async fn readable_projects(
    actor: &Actor<'_>,
    project: Option<&str>,
) -> Result<HashSet<String>> {
    Ok(match project {
        Some(id) => HashSet::from([readable_project(actor, id).await?]),
        None => {
            let mut set = HashSet::new();
            for p in actor.state.store().projects().await? {
                if project_access(actor, &p).await?.can_read_data() {
                    set.insert(p.id);
                }
            }
            set
        }
    })
}

/// The canonical ID of project `id` when the caller may read its data;
/// otherwise "not found", as the REST API answers.
pub async fn readable_project(actor: &Actor<'_>, id: &str) -> Result<String> {
    let found = actor
        .state
        .store()
        .project(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {id}")))?;
    if !project_access(actor, &found).await?.can_read_data() {
        return Err(Error::not_found(format!("project {id}")));
    }
    Ok(found.id)
}

/// The visible sessions holding study `uid`; none is "not found".
pub async fn study_sessions(
    actor: &Actor<'_>,
    project: Option<&str>,
    uid: &str,
) -> Result<Vec<StudyRow>> {
    let found = visible_studies(actor, project, Some(uid)).await?;
    if found.is_empty() {
        return Err(Error::not_found(format!("study {uid}")));
    }
    Ok(found)
}
