//! Archiving, moving and deleting prearchive sessions. Each action first
//! flips the row into a transient status with a compare-and-swap, so two
//! requests on one session cannot both act ("Duplicate archive attempt").

use std::path::Path;

use xnatkit_dicom::{ExistingSession, Route};

use super::{build, prearchive_root, session_dir, status};
use crate::access::Caller;
use crate::access::ingest::destination;
use crate::archive::Error;
use crate::import::archive::{ArchiveError, ArchiveTarget, archive_study};
use crate::import::options::Overwrite;
use crate::import::pipeline::sort_group;
use crate::state::AppState;
use crate::store::{PrearchiveSession, UNASSIGNED};

/// Statuses a user action may start from.
const ACTIONABLE: [&str; 4] = [
    status::READY,
    status::CONFLICT,
    status::ERROR,
    status::RECEIVING,
];

/// Relabelling and overwrite rules of `POST /data/services/archive`.
#[derive(Debug, Clone)]
pub struct ArchiveRequest {
    pub project: Option<String>,
    pub subject: Option<String>,
    pub label: Option<String>,
    pub overwrite: Overwrite,
}

async fn claim(state: &AppState, session: &PrearchiveSession, to: &str) -> Result<(), Error> {
    if state
        .store()
        .swap_prearchive_status(session.id, &ACTIONABLE, to)
        .await?
    {
        return Ok(());
    }
    let now = state
        .store()
        .prearchive_session_by_id(session.id)
        .await?
        .map(|s| s.status)
        .unwrap_or_else(|| "gone".to_owned());
    Err(Error::Conflict(format!(
        "Duplicate action on prearchive session {}: it is {now}; wait for that to finish",
        session.folder
    )))
}

/// Removes `dir` and then its parent timestamp folder if that is empty now.
async fn remove_session_dir(dir: &Path) {
    if let Err(err) = tokio::fs::remove_dir_all(dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {err}", dir.display());
    }
    if let Some(parent) = dir.parent() {
        // Fails harmlessly while other sessions share the timestamp folder.
        let _ = tokio::fs::remove_dir(parent).await;
    }
}

/// Archives a prearchive session; returns the archive URI.
pub async fn archive(
    state: &AppState,
    caller: &Caller,
    session: &PrearchiveSession,
    request: &ArchiveRequest,
) -> Result<String, Error> {
    let project_id = request
        .project
        .clone()
        .unwrap_or_else(|| session.project.clone());
    if project_id == UNASSIGNED {
        return Err(Error::Invalid(format!(
            "prearchive session {} has no project: add project=P to archive it",
            session.folder
        )));
    }
    // The source was allowed by the route; the destination is decided here
    // so every caller (routes, sweep, receiver) gets the same rule.
    let project = destination(state, caller, &project_id, request.overwrite).await?;
    claim(state, session, status::ARCHIVING).await?;
    let created_by = caller.username().unwrap_or("admin").to_owned();
    // Its own task from here: a client hanging up must not leave the
    // session ARCHIVING with its files half-way.
    tokio::spawn(archive_claimed(
        state.clone(),
        created_by,
        session.clone(),
        request.clone(),
        project.id.clone(),
    ))
    .await
    .map_err(|e| Error::Internal(format!("prearchive archiver failed: {e}")))?
}

/// The part of [`archive`] after the session was claimed (ARCHIVING).
async fn archive_claimed(
    state: AppState,
    created_by: String,
    session: PrearchiveSession,
    request: ArchiveRequest,
    project_id: String,
) -> Result<String, Error> {
    let (state, session, request) = (&state, &session, &request);
    let store = state.store();
    let instances = build::session_instances(session_dir(state, session)).await?;
    if instances.is_empty() {
        store
            .set_prearchive_status(
                session.id,
                status::ERROR,
                "Empty sessions cannot be archived.",
            )
            .await?;
        return Err(Error::Invalid(format!(
            "prearchive session {} holds no readable DICOM; Empty sessions cannot be archived",
            session.folder
        )));
    }
    let instances: Vec<_> = instances.into_iter().map(|(_, i)| i).collect();
    let label = request
        .label
        .clone()
        .unwrap_or_else(|| session.folder.clone());
    let subject = request
        .subject
        .clone()
        .or_else(|| (!session.subject.is_empty()).then(|| session.subject.clone()))
        .or_else(|| {
            instances.iter().find_map(|i| {
                i.header
                    .patient_name
                    .as_deref()
                    .and_then(xnatkit_model::sanitize_label)
            })
        })
        .unwrap_or_else(|| label.clone());
    let route = Route {
        project: Some(project_id.clone()),
        subject: Some(subject.clone()),
        session: Some(label.clone()),
        auto_archive: None,
    };
    let Some(study) = sort_group(&route, &instances) else {
        store
            .set_prearchive_status(session.id, status::ERROR, "nothing to archive")
            .await?;
        return Err(Error::Invalid("nothing to archive".to_owned()));
    };
    let preferred = ExistingSession {
        scan_ids: store
            .prearchive_scans(session.id)
            .await?
            .into_iter()
            .map(|s| (s.series_uid, s.scan_id))
            .collect(),
        ..ExistingSession::default()
    };
    let target = ArchiveTarget {
        project: project_id,
        subject,
        label,
    };
    match archive_study(
        state,
        &created_by,
        &target,
        &instances,
        &study,
        &preferred,
        request.overwrite,
    )
    .await
    {
        Ok(uri) => {
            // A crash from here until the row is gone leaves an ARCHIVING
            // session whose files are in the archive: recovery removes it.
            crate::crash::point("prearchive.archived");
            remove_session_dir(&session_dir(state, session)).await;
            store.delete_prearchive_session(session.id).await?;
            Ok(uri)
        }
        Err(ArchiveError::Conflict(message)) => {
            store
                .set_prearchive_status(session.id, status::CONFLICT, &message)
                .await?;
            Err(Error::Conflict(message))
        }
        Err(ArchiveError::Failed(error)) => {
            store
                .set_prearchive_status(session.id, status::ERROR, &error.to_string())
                .await?;
            Err(error)
        }
    }
}

/// Moves a session to another project (or out of Unassigned).
pub async fn move_to(
    state: &AppState,
    session: &PrearchiveSession,
    new_project: &str,
) -> Result<PrearchiveSession, Error> {
    claim(state, session, status::MOVING).await?;
    let store = state.store();
    let restore = |message: String| async move {
        let _ = store
            .set_prearchive_status(session.id, &session.status, "")
            .await;
        Error::Conflict(message)
    };
    let from = session_dir(state, session);
    let to = prearchive_root(state)
        .join(new_project)
        .join(&session.timestamp)
        .join(&session.folder);
    if to.exists() {
        return Err(restore(format!(
            "project {new_project} already has prearchive session {}/{}",
            session.timestamp, session.folder
        ))
        .await);
    }
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::Internal(format!("creating {}: {e}", parent.display())))?;
    }
    tokio::fs::rename(&from, &to)
        .await
        .map_err(|e| Error::Internal(format!("moving {}: {e}", from.display())))?;
    if !store
        .move_prearchive_session(session.id, new_project, &session.folder)
        .await?
    {
        let _ = tokio::fs::rename(&to, &from).await;
        return Err(restore(format!(
            "project {new_project} already has prearchive session {}/{}",
            session.timestamp, session.folder
        ))
        .await);
    }
    if let Some(parent) = from.parent() {
        let _ = tokio::fs::remove_dir(parent).await;
    }
    store
        .set_prearchive_status(session.id, &session.status, &session.message)
        .await?;
    store
        .prearchive_session_by_id(session.id)
        .await?
        .ok_or_else(|| Error::Internal("moved prearchive session vanished".to_owned()))
}

/// Deletes a session's folder and row.
pub async fn delete(state: &AppState, session: &PrearchiveSession) -> Result<(), Error> {
    claim(state, session, status::DELETING).await?;
    remove_session_dir(&session_dir(state, session)).await;
    state.store().delete_prearchive_session(session.id).await?;
    Ok(())
}
